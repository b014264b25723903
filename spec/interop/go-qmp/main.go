// Command go-qmp is a QMP client built on go-qemu's qmp package
// (github.com/digitalocean/go-qemu/qmp, Debian golang-github-digitalocean-go-qemu-dev).
// It exists so that interop tests can talk to a monitor through a client
// that qmpx's authors did not write. All QMP traffic goes through the library:
// this program only sequences calls, adds deadlines and prints results.
//
// Usage:
//
//	go-qmp [flags] -socket PATH [COMMAND_JSON ...]
//
// Output (stdout, one record per line, in this order):
//
//	greeting {"capabilities":[...],"version":{...}}   after Connect()
//	reply <raw reply line>                             per successful Run()
//	error <desc>                                       per QMP error reply (only with -allow-errors)
//	event NAME [DATA]                                  the first N events (-events N), after all replies
//
// Exit status: 0 success, 1 any failure (one line "go-qmp: ..." on stderr),
// 2 usage error.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-qmp: "+format+"\n", args...)
	os.Exit(1)
}

func usage(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go-qmp: "+format+"\n", args...)
	flag.Usage()
	os.Exit(2)
}

type timeoutError struct{ msg string }

func (e *timeoutError) Error() string { return e.msg }

// withTimeout runs f in a goroutine and gives up after d. go-qemu's Connect,
// Run and Disconnect have no deadlines of their own and can block forever.
func withTimeout(what string, d time.Duration, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return &timeoutError{fmt.Sprintf("%s: no answer within %s", what, d)}
	}
}

// classify tells a QMP error reply (go-qemu returns errors.New(desc) for it)
// apart from transport and decoding failures.
func classify(err error) (qmpError bool, detail string) {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var op *net.OpError
	var to *timeoutError
	switch {
	case errors.As(err, &to):
		return false, err.Error()
	case errors.Is(err, bufio.ErrTooLong):
		return false, fmt.Sprintf("%v (go-qemu reads lines with a default bufio.Scanner: 64 KiB max, and stops reading for good)", err)
	case errors.As(err, &syn):
		return false, fmt.Sprintf("%v (connection closed before a reply, or reply not JSON)", err)
	case errors.As(err, &typ):
		return false, fmt.Sprintf("%v (go-qemu could not decode the reply; its reply struct wants a string id)", err)
	case errors.As(err, &op):
		return false, err.Error()
	}
	return true, err.Error()
}

type eventLog struct {
	mu     sync.Mutex
	events []qmp.Event
	closed bool
	change chan struct{} // closed and replaced on every change
}

func newEventLog() *eventLog { return &eventLog{change: make(chan struct{})} }

func (l *eventLog) add(e qmp.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	close(l.change)
	l.change = make(chan struct{})
	l.mu.Unlock()
}

func (l *eventLog) close() {
	l.mu.Lock()
	l.closed = true
	close(l.change)
	l.change = make(chan struct{})
	l.mu.Unlock()
}

// waitFor waits until n events were logged, the channel closed or the deadline passed.
func (l *eventLog) waitFor(n int, deadline time.Time) ([]qmp.Event, bool, bool) {
	for {
		l.mu.Lock()
		evs := append([]qmp.Event(nil), l.events...)
		closed, ch := l.closed, l.change
		l.mu.Unlock()
		if len(evs) >= n {
			return evs[:n], true, closed
		}
		if closed {
			return evs, false, true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return evs, false, false
		}
		select {
		case <-ch:
		case <-time.After(left):
		}
	}
}

func readScript(path string) ([]string, error) {
	var f *os.File
	if path == "-" {
		f = os.Stdin
	} else {
		var err error
		if f, err = os.Open(path); err != nil {
			return nil, err
		}
		defer f.Close()
	}
	var cmds []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cmds = append(cmds, line)
	}
	return cmds, sc.Err()
}

func main() {
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: go-qmp [flags] -socket PATH [COMMAND_JSON ...]\n"+
			"Connects with go-qemu's qmp.NewSocketMonitor + Connect(), runs each command with Run(),\n"+
			"prints 'greeting JSON', 'reply RAW' per command, then 'event NAME' for -events N.\n\nflags:\n")
		flag.PrintDefaults()
	}
	socket := flag.String("socket", "", "monitor address: a unix socket path, or HOST:PORT with -network tcp (required)")
	network := flag.String("network", "unix", "network passed to qmp.NewSocketMonitor: unix or tcp")
	dialTimeout := flag.Duration("dial-timeout", 2*time.Second, "timeout passed to qmp.NewSocketMonitor (dial only)")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline for Connect() (greeting + qmp_capabilities), each Run() and Disconnect()")
	nEvents := flag.Int("events", 0, "number of events to wait for and print; >0 calls Events() right after Connect(), before any command")
	eventTimeout := flag.Duration("event-timeout", 5*time.Second, "how long to wait for the -events after the last reply")
	eventData := flag.Bool("event-data", false, "print each event's data after its name, re-encoded by Go (sorted keys; null when absent)")
	allowErrors := flag.Bool("allow-errors", false, "a QMP error reply prints 'error DESC' and is not a failure")
	script := flag.String("script", "", "file with one command per line (blank lines and # comments skipped; - for stdin), run before the positional commands")
	noGreeting := flag.Bool("no-greeting", false, "do not print the greeting line")
	flag.Parse()

	if *socket == "" {
		usage("-socket is required")
	}
	if *network != "unix" && *network != "tcp" {
		usage("-network must be unix or tcp, not %q", *network)
	}
	if *nEvents < 0 {
		usage("-events must be >= 0")
	}
	var cmds []string
	if *script != "" {
		c, err := readScript(*script)
		if err != nil {
			fail("reading -script %s: %v", *script, err)
		}
		cmds = c
	}
	cmds = append(cmds, flag.Args()...)

	mon, err := qmp.NewSocketMonitor(*network, *socket, *dialTimeout)
	if err != nil {
		fail("%v", err)
	}
	// Do not call Disconnect() after a failed Connect(): go-qemu then ranges
	// over a nil channel and blocks forever. Exiting closes the socket.
	if err := withTimeout("Connect (greeting + qmp_capabilities)", *timeout, mon.Connect); err != nil {
		fail("connect %s: %v", *socket, err)
	}
	if !*noGreeting {
		g, _ := json.Marshal(struct {
			Capabilities []string     `json:"capabilities"`
			Version      *qmp.Version `json:"version"`
		}{mon.Capabilities, mon.Version})
		fmt.Printf("greeting %s\n", g)
	}

	// Events() must be called before the commands: go-qemu drops every event
	// that arrives while nobody has called Events(). Once it has been called,
	// the channel is unbuffered and the reader goroutine blocks on it, replies
	// included, so it must be drained until it closes (Disconnect waits for that).
	log := newEventLog()
	if *nEvents > 0 {
		ch, err := mon.Events(context.Background())
		if err != nil {
			fail("Events: %v", err)
		}
		go func() {
			for e := range ch {
				log.add(e)
			}
			log.close()
		}()
	}

	for i, cmd := range cmds {
		var out []byte
		err := withTimeout(fmt.Sprintf("Run(command %d)", i+1), *timeout, func() error {
			buf, err := mon.Run([]byte(cmd))
			// go-qemu hands out the bufio.Scanner's own buffer, which its reader
			// goroutine may already be overwriting: copy at once, then check.
			out = append([]byte(nil), buf...)
			return err
		})
		if err != nil {
			isQMP, detail := classify(err)
			if isQMP && *allowErrors {
				fmt.Printf("error %s\n", detail)
				continue
			}
			if isQMP {
				fail("command %d %s: QMP error: %s", i+1, cmd, detail)
			}
			fail("command %d %s: %s", i+1, cmd, detail)
		}
		if !json.Valid(out) {
			fail("command %d %s: reply is not valid JSON (go-qemu buffer reuse race?): %q", i+1, cmd, out)
		}
		fmt.Printf("reply %s\n", out)
	}

	if *nEvents > 0 {
		evs, ok, closed := log.waitFor(*nEvents, time.Now().Add(*eventTimeout))
		for _, e := range evs {
			if *eventData {
				var d []byte = []byte("null")
				if e.Data != nil {
					d, _ = json.Marshal(e.Data)
				}
				fmt.Printf("event %s %s\n", e.Event, d)
			} else {
				fmt.Printf("event %s\n", e.Event)
			}
		}
		if !ok {
			names := make([]string, len(evs))
			for i, e := range evs {
				names[i] = e.Event
			}
			why := fmt.Sprintf("timed out after %s", *eventTimeout)
			if closed {
				why = "connection closed"
			}
			fail("%s waiting for events: got %d of %d [%s]", why, len(evs), *nEvents, strings.Join(names, " "))
		}
	}

	if err := withTimeout("Disconnect", *timeout, mon.Disconnect); err != nil {
		fail("disconnect: %v", err)
	}
}
