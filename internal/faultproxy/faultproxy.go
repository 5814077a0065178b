// Package faultproxy is an HTTP proxy for tests that sits between an AWS SDK
// client and a local stand-in (dynalite, goaws) and fails chosen requests the
// ways a real network and service fail: a 5xx, throttling, a dropped
// connection, a stall, and the worst case for idempotency, a request that
// reaches the server and is applied but whose response is lost.
//
// It listens on 127.0.0.1 only and forwards only to a loopback target.
package faultproxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Kind says what the proxy does with one request.
type Kind int

// Kinds of fault.
const (
	// Pass forwards the request and returns the response.
	Pass Kind = iota
	// ServerError answers 500 with the protocol's error body, without
	// forwarding.
	ServerError
	// Throttle answers with the protocol's throttling error, without
	// forwarding.
	Throttle
	// Drop reads the request and closes the connection without forwarding
	// or answering.
	Drop
	// Delay holds the request for Fault.Delay, then forwards it, unless the
	// client gave up first, in which case the request is not forwarded.
	Delay
	// ForwardThenDrop forwards the request, waits for the server's
	// response, and closes the client's connection without answering: the
	// server applied the request, the client saw a network error.
	ForwardThenDrop
)

// String returns the kind's name, as test output shows it.
func (k Kind) String() string {
	switch k {
	case Pass:
		return "pass"
	case ServerError:
		return "server-error"
	case Throttle:
		return "throttle"
	case Drop:
		return "drop"
	case Delay:
		return "delay"
	case ForwardThenDrop:
		return "forward-then-drop"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Fault is what to do with one request.
type Fault struct {
	Kind Kind
	// Delay is how long a Delay fault holds the request.
	Delay time.Duration
}

// Rule chooses the fault for the nth request the proxy has received
// (counting from 1). It is called with the proxy's lock held, one request at
// a time, so it need not be safe for concurrent use and must not call the
// Proxy.
type Rule func(n int64, r *http.Request) Fault

// Protocol holds the error responses of one AWS wire protocol.
type Protocol struct {
	// ContentType is sent with both error responses.
	ContentType string
	// ServerErrorStatus and ServerErrorBody answer a ServerError fault.
	ServerErrorStatus int
	ServerErrorBody   string
	// ThrottleStatus and ThrottleBody answer a Throttle fault; the SDKs
	// recognise throttling by the error code in the body.
	ThrottleStatus int
	ThrottleBody   string
}

// AWSJSON is DynamoDB's protocol (awsJson1_0). It is the default.
var AWSJSON = Protocol{
	ContentType:       "application/x-amz-json-1.0",
	ServerErrorStatus: http.StatusInternalServerError,
	ServerErrorBody:   `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected by faultproxy"}`,
	ThrottleStatus:    http.StatusBadRequest,
	ThrottleBody:      `{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"injected by faultproxy"}`,
}

// AWSQuery is the query/XML protocol that SNS speaks.
var AWSQuery = Protocol{
	ContentType:       "text/xml",
	ServerErrorStatus: http.StatusInternalServerError,
	ServerErrorBody:   `<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code><Message>injected by faultproxy</Message></Error><RequestId>faultproxy</RequestId></ErrorResponse>`,
	ThrottleStatus:    http.StatusBadRequest,
	ThrottleBody:      `<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>injected by faultproxy</Message></Error><RequestId>faultproxy</RequestId></ErrorResponse>`,
}

// Bounds that keep a misbehaving test from exhausting the machine.
const (
	// MaxBody bounds a request or response body.
	MaxBody = 16 << 20
	// MaxInFlight bounds the requests handled at once; more wait.
	MaxInFlight = 64
	// forwardTimeout bounds one forwarded round trip.
	forwardTimeout = time.Minute
)

// Proxy is a fault-injecting reverse proxy. It is safe for concurrent use.
type Proxy struct {
	target *url.URL
	ln     net.Listener
	srv    *http.Server
	client *http.Client
	slots  chan struct{}
	closed chan struct{}
	once   sync.Once

	requests atomic.Int64
	injected atomic.Int64

	mu       sync.Mutex
	protocol Protocol
	rule     Rule
	nth      map[int64]Fault
}

// New starts a proxy to target, an http URL on a loopback address, listening
// on 127.0.0.1 on a free port. Like httptest.NewServer it panics when it
// cannot listen, and also when target is not loopback, since it is meant for
// tests only.
func New(target string) *Proxy {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || !loopback(u.Hostname()) {
		panic(fmt.Sprintf("faultproxy: target %q is not an http URL on a loopback address", target))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("faultproxy: listen: %v", err))
	}
	p := &Proxy{
		target: u,
		ln:     ln,
		client: &http.Client{
			Transport: &http.Transport{
				Proxy:               nil, // never an environment proxy: loopback only
				MaxIdleConnsPerHost: MaxInFlight,
			},
			Timeout: forwardTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		slots:    make(chan struct{}, MaxInFlight),
		closed:   make(chan struct{}),
		protocol: AWSJSON,
		nth:      make(map[int64]Fault),
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln)
	return p
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// URL returns the proxy's base URL, e.g. http://127.0.0.1:39145.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Close stops the proxy, releasing requests held by Delay.
func (p *Proxy) Close() {
	p.once.Do(func() {
		close(p.closed)
		p.srv.Close()
		p.client.CloseIdleConnections()
	})
}

// Requests returns how many requests the proxy has received.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// Injected returns how many requests got a fault other than Pass.
func (p *Proxy) Injected() int64 { return p.injected.Load() }

// SetProtocol sets the error bodies that ServerError and Throttle send.
func (p *Proxy) SetProtocol(pr Protocol) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.protocol = pr
}

// FailNth makes the nth request from now on (1 is the next one) get f. It
// takes precedence over a Rule.
func (p *Proxy) FailNth(n int64, f Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nth[p.requests.Load()+n] = f
}

// SetRule makes r choose the fault for every request not set by FailNth; nil
// passes everything.
func (p *Proxy) SetRule(r Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule = r
}

// Reset removes every pending fault and the rule.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule = nil
	clear(p.nth)
}

func (p *Proxy) decide(r *http.Request) (Fault, Protocol) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.requests.Add(1)
	f, ok := p.nth[n]
	if ok {
		delete(p.nth, n)
	} else if p.rule != nil {
		f = p.rule(n, r)
	}
	if f.Kind != Pass {
		p.injected.Add(1)
	}
	return f, p.protocol
}

// ServeHTTP applies the fault chosen for r.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case p.slots <- struct{}{}:
		defer func() { <-p.slots }()
	case <-r.Context().Done():
		return
	case <-p.closed:
		return
	}
	f, pr := p.decide(r)
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return // the client went away
	}
	if len(body) > MaxBody {
		http.Error(w, "faultproxy: request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	switch f.Kind {
	case ServerError:
		writeError(w, pr.ContentType, pr.ServerErrorStatus, pr.ServerErrorBody)
		return
	case Throttle:
		writeError(w, pr.ContentType, pr.ThrottleStatus, pr.ThrottleBody)
		return
	case Drop:
		drop(w)
		return
	case Delay:
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-p.closed:
			return
		}
	}
	resp, respBody, err := p.forward(r, body)
	if err != nil {
		http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	if f.Kind == ForwardThenDrop {
		drop(w)
		return
	}
	h := w.Header()
	for k, vs := range resp.Header {
		if !hopByHop[http.CanonicalHeaderKey(k)] {
			h[k] = vs
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(respBody)))
	w.WriteHeader(resp.StatusCode)
	w.Write(respBody)
}

func writeError(w http.ResponseWriter, contentType string, status int, body string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// drop closes the client's connection without a response.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // HTTP/2: aborts the stream instead
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0) // reset, as a failed network path does
	}
	conn.Close()
}

var hopByHop = map[string]bool{
	"Connection":          true,
	"Keep-Alive":          true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Proxy-Connection":    true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
}

// forward sends r with body to the target and returns the whole response.
// It does not follow the client's context: a request that reached the proxy
// reaches the server, as it would once on the wire.
func (p *Proxy) forward(r *http.Request, body []byte) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
	defer cancel()
	u := *p.target
	u.Path = r.URL.Path
	u.RawPath = r.URL.RawPath
	u.RawQuery = r.URL.RawQuery
	out, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range r.Header {
		if !hopByHop[http.CanonicalHeaderKey(k)] {
			out.Header[k] = vs
		}
	}
	out.Host = r.Host // the SDK signed the Host it sent
	resp, err := p.client.Do(out)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return nil, nil, err
	}
	if len(b) > MaxBody {
		return nil, nil, fmt.Errorf("response body over %d bytes", MaxBody)
	}
	return resp, b, nil
}
