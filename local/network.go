package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
)

// ecsEndpointIP is the link-local address at which ECS serves a task's credentials and
// metadata endpoints. The AWS SDK accepts a plain-http AWS_CONTAINER_CREDENTIALS_FULL_URI only
// on a loopback address or this one (or EKS's 169.254.170.23), so a container on a bridge
// network, which cannot reach the host's loopback, must find the endpoints here.
const ecsEndpointIP = "169.254.170.2"

// hasAddress reports whether an interface of this host carries ip.
func hasAddress(ip string) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.String() == ip {
			return true
		}
	}
	return false
}

// ensureECSEndpointIP puts 169.254.170.2 on the loopback interface, as the ECS agent makes
// that address reach its endpoints with an iptables rule. Packets from a bridge-networked
// container to it then leave through the bridge's gateway and are delivered to the host, where
// local's servers listen on it. It needs root and iproute2; an address that is already there
// is used as it is and left in place. The address is removed at teardown only if it was added.
func ensureECSEndpointIP(ctx context.Context, cl *cleanups) (added bool, err error) {
	if hasAddress(ecsEndpointIP) {
		return false, nil
	}
	if os.Geteuid() != 0 {
		return false, errors.New("adding " + ecsEndpointIP + " to lo needs root")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		return false, errors.New("adding " + ecsEndpointIP + " to lo needs the ip command (iproute2)")
	}
	if out, err := exec.CommandContext(ctx, ip, "addr", "add", ecsEndpointIP+"/32", "dev", "lo").CombinedOutput(); err != nil {
		return false, fmt.Errorf("ip addr add %s/32 dev lo: %v: %s", ecsEndpointIP, err, out)
	}
	cl.add(ecsEndpointIP+" on lo", func(ctx context.Context) error {
		if out, err := exec.CommandContext(ctx, ip, "addr", "del", ecsEndpointIP+"/32", "dev", "lo").CombinedOutput(); err != nil {
			return fmt.Errorf("ip addr del %s/32 dev lo: %v: %s", ecsEndpointIP, err, out)
		}
		return nil
	})
	return true, nil
}

// forwarder relays TCP connections from a listener to a fixed target, byte for byte. It lets a
// container on a bridge network reach an emulator that listens on the host's loopback. Being a
// plain relay, it leaves the Host header, and so the SigV4 signature, as the client made them.
type forwarder struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
}

func newForwarder(listenHost, target string) (*forwarder, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(listenHost, "0"))
	if err != nil {
		return nil, fmt.Errorf("forwarder: listen on %s: %w", listenHost, err)
	}
	return &forwarder{ln: ln, target: target}, nil
}

// Addr is the address the forwarder listens on.
func (f *forwarder) Addr() string { return f.ln.Addr().String() }

// Run relays connections until ctx ends, then closes them all.
func (f *forwarder) Run(ctx context.Context) error {
	var mu sync.Mutex
	open := map[net.Conn]struct{}{}
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			open[c] = struct{}{}
		} else {
			delete(open, c)
		}
	}
	go func() {
		<-ctx.Done()
		f.ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
	}()
	for {
		in, err := f.ln.Accept()
		if err != nil {
			f.wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("forwarder: %w", err)
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			var d net.Dialer
			out, err := d.DialContext(ctx, "tcp", f.target)
			if err != nil {
				in.Close()
				return
			}
			track(in, true)
			track(out, true)
			done := make(chan struct{}, 2)
			relay := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go relay(out, in)
			go relay(in, out)
			<-done
			<-done
			in.Close()
			out.Close()
			track(in, false)
			track(out, false)
		}()
	}
}
