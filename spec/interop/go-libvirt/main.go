// Command go-libvirt-client is a libvirt RPC client built on Debian's
// go-libvirt (github.com/digitalocean/go-libvirt) and go-qemu's
// qmp.NewLibvirtRPCMonitor (github.com/digitalocean/go-qemu/qmp). It exists
// so that interop tests reach qmpx's libvirt endpoint through libvirt
// clients qmpx's authors did not write. All RPC traffic goes through the
// libraries; this program only sequences calls and prints results.
//
// Usage:
//
//	go-libvirt-client -socket PATH [-domain NAME] [COMMAND_JSON ...]
//
// Output (stdout, one record per line):
//
//	domain NAME ID UUID          per domain of Libvirt.Domains() (ConnectListAllDomains)
//	state NAME STATE             DomainGetState through go-libvirt, for each domain
//	reply RAW                    per command run with NewLibvirtRPCMonitor(-domain).Run()
//
// Exit status: 0 success, 1 any failure (one line "go-libvirt-client: ..." on stderr).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-qemu/qmp"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-libvirt-client: "+format+"\n", args...)
	os.Exit(1)
}

func dial(socket string, timeout time.Duration) net.Conn {
	conn, err := net.DialTimeout("unix", socket, timeout)
	if err != nil {
		fail("dial %s: %v", socket, err)
	}
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		fail("deadline: %v", err)
	}
	return conn
}

func main() {
	socket := flag.String("socket", "", "the libvirt RPC socket (required)")
	domain := flag.String("domain", "", "the domain NewLibvirtRPCMonitor runs the commands on (default: the first listed)")
	timeout := flag.Duration("timeout", 20*time.Second, "deadline for everything on each connection")
	flag.Parse()
	if *socket == "" {
		fmt.Fprintln(os.Stderr, "go-libvirt-client: -socket is required")
		os.Exit(2)
	}

	l := libvirt.New(dial(*socket, *timeout))
	if err := l.Connect(); err != nil {
		fail("connect: %v", err)
	}
	domains, err := l.Domains()
	if err != nil {
		fail("list domains: %v", err)
	}
	for _, d := range domains {
		u := d.UUID
		fmt.Printf("domain %s %d %x-%x-%x-%x-%x\n", d.Name, d.ID, u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	}
	for _, d := range domains {
		state, _, err := l.DomainGetState(d, 0)
		if err != nil {
			fail("state of %s: %v", d.Name, err)
		}
		fmt.Printf("state %s %d\n", d.Name, state)
	}
	if err := l.Disconnect(); err != nil {
		fail("disconnect: %v", err)
	}

	if flag.NArg() == 0 {
		return
	}
	name := *domain
	if name == "" {
		if len(domains) == 0 {
			fail("no domain to run commands on")
		}
		name = domains[0].Name
	}
	monitor := qmp.NewLibvirtRPCMonitor(name, dial(*socket, *timeout))
	if err := monitor.Connect(); err != nil {
		fail("monitor connect: %v", err)
	}
	for _, command := range flag.Args() {
		reply, err := monitor.Run([]byte(command))
		if err != nil {
			fail("run %s: %v", command, err)
		}
		fmt.Printf("reply %s\n", reply)
	}
	if err := monitor.Disconnect(); err != nil {
		fail("monitor disconnect: %v", err)
	}
}
