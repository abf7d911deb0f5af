#!/usr/bin/env bash
# Runs streammatch's benchmarks and rewrites bench/RESULTS.md and bench/results.json.
#
#   bench/run.sh                  full run (about 11 minutes on 2 cores)
#   BENCH_QUICK=1 bench/run.sh    smaller loads and shorter windows (about 4 minutes; longer on a
#                                 machine busy with other builds)
#   BENCH_REV=HEAD bench/run.sh   benchmark a commit instead of the working tree: its source
#                                 (git archive) with this tree's bench tools copied in
#   BENCH_OUT=DIR bench/run.sh    write RESULTS.md and results.json to DIR instead of bench/
#   BENCH_KEEP=1 bench/run.sh     keep the work directory (raw outputs, logs, perf.data)
#   BENCH_COMPONENTS=0 ...        skip the component benchmarks (go test -bench)
#   BENCH_CORPUS=FILE ...         the tweets to send (default ../shared/testdata/twitter.json)
#
# The headline figures are end to end, on the binary that ships: streammatch built exactly as the
# Dockerfile builds it, run as its own process with the service's environment, reading a signed
# v1.1 statuses/filter stream from bench/firehose (another process) and writing to moto_server.
# The CPU and memory figures are the service process's own (/proc/PID/stat, VmHWM). The Go
# benchmarks of single components (decoder, matcher, store.Writer) run too, and are reported as
# component figures only.
#
# Needs Go, moto_server (on PATH), curl and python3; perf for the profile; /usr/bin/python3
# with Debian's python3-tweepy and python3-boto3 for the side-by-side run of the blog's script;
# ../shared/testdata/twitter.json (beside the repository) for every run that sends tweets.
# Whatever is missing is skipped with the reason, in the log and in RESULTS.md. podman (and the
# base images of .ci/base-images.sh) for the image size. Not run by CI: CI runs go test.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${BENCH_OUT:-${ROOT}/bench}"
WORK="$(mktemp -d)"
QUICK="${BENCH_QUICK:-0}"
REV="${BENCH_REV:-}"
SEED_PYTHON=/usr/bin/python3
PIDS=()

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -- "-${pid}" 2>/dev/null || kill "${pid}" 2>/dev/null || true
	done
	if [[ "${BENCH_KEEP:-0}" == 1 ]]; then log "kept ${WORK}"; else rm -rf "${WORK}"; fi
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start runs a command in its own process group, so cleanup can stop it and its children.
start() {
	setsid "$@" >>"${WORK}/services.log" 2>&1 &
	PIDS+=("$!")
}

# stop_last stops the process group started last.
stop_last() {
	kill -- "-${PIDS[-1]}" 2>/dev/null || true
	unset 'PIDS[-1]'
}

# wait_http waits until url answers with status want (default: any HTTP answer).
wait_http() {
	local url=$1 want=${2:-any} code
	for _ in $(seq 1 300); do
		code="$(curl -sS -o /dev/null -w '%{http_code}' "${url}" 2>/dev/null || true)"
		if [[ "${code}" != 000 && ("${want}" == any || "${code}" == "${want}") ]]; then return 0; fi
		sleep 0.1
	done
	log "no answer from ${url}"
	return 1
}

# note records why a measurement was skipped; report.py prints it.
note() {
	log "$1: $2"
	printf '%s\n' "$2" >"${WORK}/skip_$1"
}

# source_tree sets SRC: the working tree, or BENCH_REV's source with this tree's bench tools.
source_tree() {
	SRC="${ROOT}"
	if [[ -z "${REV}" ]]; then
		git -C "${ROOT}" rev-parse --short HEAD >"${WORK}/revision" 2>/dev/null || echo unknown >"${WORK}/revision"
		if [[ -n "$(git -C "${ROOT}" status --porcelain 2>/dev/null)" ]]; then echo "+ uncommitted changes" >>"${WORK}/revision"; fi
		return 0
	fi
	log "source: ${REV} (git archive), with the bench tools of the working tree"
	SRC="${WORK}/src"
	mkdir -p "${SRC}"
	# The benchmarks find the corpus at ../shared beside the module.
	if [[ -d "${ROOT}/../shared" ]]; then ln -s "$(cd "${ROOT}/.." && pwd)/shared" "${WORK}/shared"; fi
	git -C "${ROOT}" archive "${REV}" | tar -x -C "${SRC}"
	mkdir -p "${SRC}/bench"
	for f in e2e firehose startup seed_twitterstream.py; do
		rm -rf "${SRC:?}/bench/${f}"
		cp -r "${ROOT}/bench/${f}" "${SRC}/bench/${f}"
	done
	git -C "${ROOT}" rev-parse --short "${REV}" >"${WORK}/revision"
}

build() {
	log "building streammatch as the Dockerfile does, an unstripped copy for perf, and the bench tools"
	# The Dockerfile: CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w -X main.version=..."
	(cd "${SRC}" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-s -w -X main.version=bench" -o "${WORK}/streammatch" .)
	(cd "${SRC}" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags="-X main.version=bench" -o "${WORK}/streammatch.unstripped" .)
	(cd "${SRC}" && go build -o "${WORK}/firehose" ./bench/firehose && go build -o "${WORK}/e2e" ./bench/e2e && go build -o "${WORK}/startup" ./bench/startup)
	stat -c %s "${WORK}/streammatch" >"${WORK}/binary_bytes"
	go tool nm -size -sort size "${WORK}/streammatch.unstripped" >"${WORK}/nm_all.txt"
	head -n 15 "${WORK}/nm_all.txt" >"${WORK}/nm.txt"
	# Largest contributors by package: sum symbol sizes by import path prefix.
	awk '{sz=$2; name=$4; sub(/\(.*/, "", name); n=split(name, p, "."); pkg=p[1]; for (i=2;i<n;i++) pkg=pkg"."p[i]; if (pkg ~ /\//) { m=split(pkg, q, "/"); pkg=q[1]; for (i=2;i<=m && i<=3;i++) pkg=pkg"/"q[i] } s[pkg]+=sz} END {for (k in s) printf "%d %s\n", s[k], k}' \
		"${WORK}/nm_all.txt" | sort -rn >"${WORK}/nm_pkgs_all.txt"
	head -n 12 "${WORK}/nm_pkgs_all.txt" >"${WORK}/nm_pkgs.txt"
}

# Component benchmarks: single packages in a Go benchmark loop, not the service. They are kept
# for where the time goes inside a component; a failure (e.g. a package that moved) is reported,
# not fatal. The ./stream/... patterns find the benchmarks wherever they live under stream/.
bench_components() {
	local count=6 benchtime=1s
	if [[ "${QUICK}" == 1 ]]; then count=3 benchtime=300ms; fi
	go install golang.org/x/perf/cmd/benchstat@latest 2>/dev/null || log "benchstat not installable; raw results only"
	log "component: pipeline benchmark (-cpu 1, -count ${count})"
	if ! (cd "${SRC}" && go test ./bench -run '^$' -bench 'BenchmarkPipeline' -cpu 1 -count "${count}" -benchtime "${benchtime}") >"${WORK}/pipeline.txt" 2>&1; then
		note pipeline "go test ./bench -bench BenchmarkPipeline failed (see the log excerpt in RESULTS.md)"
		tail -n 20 "${WORK}/pipeline.txt" >"${WORK}/pipeline_error.txt"
		: >"${WORK}/pipeline.txt"
	fi
	log "component: decoder and matcher benchmarks (-count ${count})"
	(cd "${SRC}" && go test ./stream/... -run '^$' -bench '^BenchmarkDecoders$' -count "${count}" -benchtime "${benchtime}") >"${WORK}/decoders.txt" 2>&1 ||
		note decoders "go test ./stream/... -bench BenchmarkDecoders failed"
	(cd "${SRC}" && go test ./stream/... -run '^$' -bench '^Benchmark(Matcher|RegexpBaseline|ContainsBaseline)(English)?$' -count "${count}" -benchtime "${benchtime}") >"${WORK}/matcher.txt" 2>&1 ||
		note matcher "go test ./stream/... -bench BenchmarkMatcher failed"
	local goitems=5000 seeditems=300
	if [[ "${QUICK}" == 1 ]]; then goitems=2000 seeditems=100; fi
	log "component: store.Writer vs the seed's boto3 put_item (bench/ddb_test.go)"
	if ! (cd "${SRC}/bench" && BENCH_DDB_OUT="${WORK}/ddb.json" BENCH_DDB_GO_ITEMS="${goitems}" BENCH_DDB_SEED_ITEMS="${seeditems}" \
		go test -run TestDynamoDBVersusSeed -count=1 .) >"${WORK}/ddb.log" 2>&1; then
		note ddb "go test ./bench -run TestDynamoDBVersusSeed failed"
	fi
}

bench_startup() {
	local moto_port stream_port http_port
	moto_port="$(free_port)"
	stream_port="$(free_port)"
	http_port="$(free_port)"
	log "start-up: exec to the first 200 on /healthz, and the healthcheck subcommand"
	start moto_server -H 127.0.0.1 -p "${moto_port}"
	wait_http "http://127.0.0.1:${moto_port}/moto-api/"
	# Dummy stream credentials that only this run knows (not secrets; env passes them on exec).
	local creds=(CONSUMERKEY=bench-ck CONSUMERSECRETKEY=bench-cs ACCESSTOKEN=bench-at ACCESSTOKENSECRET=bench-as)
	# The stream: the sender with no tweets (keep-alives only), checking the signature.
	start env "${creds[@]}" "${WORK}/firehose" -addr "127.0.0.1:${stream_port}" -n 0
	wait_http "http://127.0.0.1:${stream_port}/_bench/status"
	env -i PATH="${PATH}" "${creds[@]}" SOURCE=twitter DYNAMODBTABLE=twitterStream AWSREGION=us-east-1 FILTER=fargate \
		TWITTER_STREAM_URL="http://127.0.0.1:${stream_port}" HTTP_ADDR="127.0.0.1:${http_port}" \
		AWS_ENDPOINT_URL="http://127.0.0.1:${moto_port}" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
		AWS_EC2_METADATA_DISABLED=true LOG_LEVEL=warn GOMEMLIMIT="${GOMEMLIMIT_TASKDEF}" \
		"${WORK}/startup" -bin "${WORK}/streammatch" -runs "$([[ "${QUICK}" == 1 ]] && echo 10 || echo 30)" >"${WORK}/startup.json"
	if command -v perf >/dev/null; then
		# One start-up of the unstripped binary under perf, from exec to the first 200 on /healthz.
		log "start-up profile: perf record -g, exec to the first 200 on /healthz"
		env -i PATH="${PATH}" "${creds[@]}" SOURCE=twitter DYNAMODBTABLE=twitterStream AWSREGION=us-east-1 FILTER=fargate \
			TWITTER_STREAM_URL="http://127.0.0.1:${stream_port}" HTTP_ADDR="127.0.0.1:${http_port}" \
			AWS_ENDPOINT_URL="http://127.0.0.1:${moto_port}" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
			AWS_EC2_METADATA_DISABLED=true LOG_LEVEL=warn GOMEMLIMIT="${GOMEMLIMIT_TASKDEF}" \
			perf record -g -F 4999 -o "${WORK}/startup.perf" -- "${WORK}/streammatch.unstripped" >>"${WORK}/services.log" 2>&1 &
		local perf_pid=$! svc_pid=""
		for _ in $(seq 1 200); do
			if [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${http_port}/healthz" 2>/dev/null || true)" == 200 ]]; then break; fi
			sleep 0.005
		done
		svc_pid="$(pgrep -P "${perf_pid}" | head -n 1 || true)"
		if [[ -n "${svc_pid}" ]]; then kill -TERM "${svc_pid}" 2>/dev/null || true; fi
		wait "${perf_pid}" 2>/dev/null || true
		perf report -i "${WORK}/startup.perf" --no-children --stdio -g none --percent-limit 0 2>/dev/null |
			grep -v '^#' | grep -v '^$' >"${WORK}/startup_perf_flat.txt" || true
	fi
	stop_last
	stop_last
}

bench_e2e() {
	local only=firehose,rate,burst
	if command -v perf >/dev/null; then only+=,profile; else note profile "perf is not installed (apt-get install linux-perf)"; fi
	local seed_args=() quick_args=()
	if [[ "${QUICK}" == 1 ]]; then quick_args=(-quick); fi
	if "${SEED_PYTHON}" -c 'import tweepy, boto3; assert int(tweepy.__version__.split(".")[0]) >= 4' 2>/dev/null; then
		only+=,seed
		seed_args=(-seed "${SRC}/bench/seed_twitterstream.py" -python "${SEED_PYTHON}")
		"${SEED_PYTHON}" -c 'import tweepy, boto3; print("tweepy", tweepy.__version__, "boto3", boto3.__version__)' >"${WORK}/seed_versions"
	else
		note seed "${SEED_PYTHON} lacks tweepy 4 or boto3: install them with 'apt-get install -y python3-tweepy python3-boto3' to run the blog's twitterstream.py side by side"
	fi
	log "end to end: ${only} (bench/e2e; logs in ${WORK}/e2e-logs)"
	mkdir -p "${WORK}/e2e-logs"
	# A failed run is reported with what was measured before it, not fatal: e2e writes its JSON
	# after every benchmark.
	if ! "${WORK}/e2e" -bin "${WORK}/streammatch" -perf-bin "${WORK}/streammatch.unstripped" -perf-out "${WORK}/perf.data" \
		-firehose "${WORK}/firehose" -corpus "${CORPUS}" -out "${WORK}/e2e.json" -work "${WORK}/e2e-logs" \
		-gomemlimit "${GOMEMLIMIT_TASKDEF}" -clk-tck "$(cat "${WORK}/clk_tck")" -only "${only}" \
		"${seed_args[@]}" "${quick_args[@]}" 2> >(tee "${WORK}/e2e.log" >&2); then
		sleep 0.5 # let tee write the last line
		note e2e_error "bench/e2e failed: $(grep '^e2e:' "${WORK}/e2e.log" | tail -n 1)"
	fi
	if [[ -s "${WORK}/perf.data" ]]; then
		perf report -i "${WORK}/perf.data" --no-children --stdio -g none --percent-limit 0 2>/dev/null |
			grep -v '^#' | grep -v '^$' >"${WORK}/perf_flat.txt" || true
		perf report -i "${WORK}/perf.data" --no-children --stdio -g none --sort dso 2>/dev/null |
			grep -v '^#' | grep -v '^$' >"${WORK}/perf_dso.txt" || true
		# Every sample's call chain, for where the kernel's share comes from.
		perf script -i "${WORK}/perf.data" -F ip,sym,dso >"${WORK}/perf_script.txt" 2>/dev/null || true
	fi
	if [[ -s "${WORK}/perf.data.matching" ]]; then
		perf report -i "${WORK}/perf.data.matching" --no-children --stdio -g none --percent-limit 0 2>/dev/null |
			grep -v '^#' | grep -v '^$' >"${WORK}/perf_matching_flat.txt" || true
	fi
}

bench_image() {
	echo "not measured" >"${WORK}/image"
	if ! command -v podman >/dev/null; then
		echo "podman is not installed" >"${WORK}/image_reason"
		return 0
	fi
	log "image: podman build (offline, base images from .ci/base-images.sh)"
	if [[ -x "${SRC}/.ci/podman-setup.sh" ]]; then bash "${SRC}/.ci/podman-setup.sh" >>"${WORK}/image.log" 2>&1 || true; fi
	if ! bash "${SRC}/.ci/base-images.sh" >>"${WORK}/image.log" 2>&1; then
		echo "the base images could not be assembled (see .ci/base-images.sh)" >"${WORK}/image_reason"
		return 0
	fi
	if podman build --network none -v "$(go env GOMODCACHE)":/go/pkg/mod:ro --build-arg GOPROXY=off --pull=never \
		-t localhost/streammatch:bench "${SRC}" >>"${WORK}/image.log" 2>&1; then
		podman image inspect localhost/streammatch:bench --format '{{.Size}}' >"${WORK}/image"
	else
		echo "podman build failed: $(grep -v '^\s*$' "${WORK}/image.log" | tail -n 1)" >"${WORK}/image_reason"
	fi
}

main() {
	trap cleanup EXIT
	cd "${ROOT}"
	command -v moto_server >/dev/null || { log "moto_server is not on PATH"; exit 1; }
	local load_before load_after
	load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
	source_tree
	CORPUS="${BENCH_CORPUS:-$(cd "${ROOT}/.." && pwd)/shared/testdata/twitter.json}"
	GOMEMLIMIT_TASKDEF="$(python3 -c 'import json,sys; e={v["name"]: v["value"] for v in json.load(open(sys.argv[1]))["containerDefinitions"][0].get("environment", [])}; print(e.get("GOMEMLIMIT", ""))' "${SRC}/taskdef.json" 2>/dev/null || true)"
	if [[ -z "${GOMEMLIMIT_TASKDEF}" ]]; then GOMEMLIMIT_TASKDEF=400MiB; fi
	echo "${GOMEMLIMIT_TASKDEF}" >"${WORK}/gomemlimit"
	getconf CLK_TCK >"${WORK}/clk_tck"
	build
	if [[ "${BENCH_COMPONENTS:-1}" != 0 ]]; then bench_components; else note components "skipped (BENCH_COMPONENTS=0)"; fi
	bench_startup
	if [[ -f "${CORPUS}" ]]; then
		bench_e2e
	else
		note e2e "${CORPUS} is missing: the end-to-end runs send its tweets, so they were skipped"
	fi
	bench_image
	load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
	mkdir -p "${OUT}"
	python3 "${ROOT}/bench/report.py" "${WORK}" "${OUT}" "${QUICK}" "${load_before}" "${load_after}"
	log "wrote ${OUT}/RESULTS.md and ${OUT}/results.json"
}

main "$@"
