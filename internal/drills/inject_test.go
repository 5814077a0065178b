//go:build integration

package drills

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/anonwatch/anonwatch/internal/e2e/emu"
	"github.com/anonwatch/anonwatch/internal/faultproxy"
)

// service is one of the function's two dependencies.
type service string

const (
	dynamoDB service = "DynamoDB"
	sns      service = "SNS"
)

// faultKind is a way a dependency fails, as the drills inject it.
type faultKind int

const (
	serverError faultKind = iota
	throttling
	droppedConnection
	stall
	restart
	responseLost
)

var faultKinds = []faultKind{serverError, throttling, droppedConnection, stall, restart, responseLost}

func (k faultKind) String() string {
	switch k {
	case serverError:
		return "500"
	case throttling:
		return "throttling"
	case droppedConnection:
		return "dropped connection"
	case stall:
		return "stall"
	case restart:
		return "killed and restarted"
	case responseLost:
		return "response lost"
	}
	return "?"
}

// flagName is the kind's name in the -faults flag.
func (k faultKind) flagName() string {
	switch k {
	case droppedConnection:
		return "drop"
	case restart:
		return "restart"
	}
	return strings.ReplaceAll(k.String(), " ", "-")
}

// call is one HTTP request the function made, as the drills label it.
type call struct {
	// Op names the operation: Query, bucket (a bucket merge), claim and
	// mark-sent (UpdateItems on a notify item), or Publish.
	Op string
	// Finding is the finding_id a claim, mark-sent or Publish is about.
	Finding string
}

// classify labels a request from its target and body. It reads the body
// and puts an identical one back for the proxy to forward.
func classify(svc service, r *http.Request) call {
	body, _ := io.ReadAll(io.LimitReader(r.Body, faultproxy.MaxBody+1))
	r.Body = io.NopCloser(bytes.NewReader(body))
	if svc == sns {
		form, _ := url.ParseQuery(string(body))
		c := call{Op: form.Get("Action")}
		var forms struct {
			Default string `json:"default"`
		}
		var f struct {
			ID string `json:"finding_id"`
		}
		if json.Unmarshal([]byte(form.Get("Message")), &forms) == nil && json.Unmarshal([]byte(forms.Default), &f) == nil {
			c.Finding = f.ID
		}
		return c
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	if op != "UpdateItem" {
		return call{Op: op}
	}
	var in struct {
		Key struct {
			SK struct{ S string } `json:"sk"`
		}
		UpdateExpression          string
		ExpressionAttributeNames  map[string]string
		ExpressionAttributeValues map[string]struct{ S string }
	}
	json.Unmarshal(body, &in)
	if !strings.HasPrefix(in.Key.SK.S, "n#") { // a period's notify item
		return call{Op: "bucket"}
	}
	// The finding id is the one value of the form detect gives it (24 hex
	// digits; batch ids have 32).
	var finding string
	for _, v := range in.ExpressionAttributeValues {
		if findingIDRE.MatchString(v.S) {
			finding = v.S
		}
	}
	// Mark-sent records the finding (sent_batch) or only releases the
	// claim (an expression that is a REMOVE alone).
	if strings.HasPrefix(in.UpdateExpression, "REMOVE") {
		return call{Op: "mark-sent", Finding: finding}
	}
	for _, name := range in.ExpressionAttributeNames {
		if name == "sent_batch" {
			return call{Op: "mark-sent", Finding: finding}
		}
	}
	return call{Op: "claim", Finding: finding}
}

var findingIDRE = regexp.MustCompile(`^[0-9a-f]{24}$`)

// injector is a faultproxy Rule that labels every request and fails the
// one at a position (counting from 1), and with persistent also every retry
// the SDK makes of that same call (same amz-sdk-invocation-id), so that the
// call fails for good. A restart fault kills the emulator when the request
// at the position arrives, so that it and anything else in flight fail; the
// emulator is started again before the next request, or, persistent, only
// when Recover is called.
type injector struct {
	svc        service
	kind       faultKind
	pos        int64 // 0: no fault
	persistent bool
	stallFor   time.Duration
	srv        *emu.Server // the emulator a restart fault kills
	beforeKill func()      // run before the kill: goaws loses its queues

	mu         sync.Mutex
	calls      []call
	invID      string // the SDK's id of the call at pos
	hit        call
	attempts   int // requests the proxy saw for that call
	down       bool
	restartErr error
}

// rule is the faultproxy.Rule. The proxy calls it one request at a time.
func (in *injector) rule(n int64, r *http.Request) faultproxy.Fault {
	in.mu.Lock()
	defer in.mu.Unlock()
	c := classify(in.svc, r)
	in.calls = append(in.calls, c)
	if in.pos == 0 {
		return faultproxy.Fault{}
	}
	id := r.Header.Get("Amz-Sdk-Invocation-Id")
	if n == in.pos {
		in.invID, in.hit = id, c
	}
	same := in.invID != "" && id == in.invID
	if same {
		in.attempts++
	}
	if in.kind == restart {
		switch {
		case n == in.pos:
			if in.beforeKill != nil {
				in.beforeKill()
			}
			in.srv.Kill()
			in.down = true
		case in.down && !in.persistent:
			if err := in.srv.Restart(); err != nil {
				in.restartErr = err
			}
			in.down = false
		}
		// Forwarded to a dead port, a request gets 502 from the proxy,
		// as from a load balancer in front of a dead server.
		return faultproxy.Fault{}
	}
	if n != in.pos && !(in.persistent && same) {
		return faultproxy.Fault{}
	}
	switch in.kind {
	case serverError:
		return faultproxy.Fault{Kind: faultproxy.ServerError}
	case throttling:
		return faultproxy.Fault{Kind: faultproxy.Throttle}
	case droppedConnection:
		return faultproxy.Fault{Kind: faultproxy.Drop}
	case stall:
		return faultproxy.Fault{Kind: faultproxy.Delay, Delay: in.stallFor}
	case responseLost:
		return faultproxy.Fault{Kind: faultproxy.ForwardThenDrop}
	}
	return faultproxy.Fault{}
}

// Recover ends the fault: no request fails from now on, and a killed
// emulator is started again.
func (in *injector) Recover() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.pos = 0
	if in.down {
		in.down = false
		if err := in.srv.Restart(); err != nil {
			return err
		}
	}
	return in.restartErr
}

// Calls returns the labelled requests so far.
func (in *injector) Calls() []call {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]call(nil), in.calls...)
}

// Hit returns the call at the fault's position and how many requests the
// proxy saw for it (the SDK's attempts).
func (in *injector) Hit() (call, int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.hit, in.attempts
}
