package audit

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/anonwatch/anonwatch/internal/jsonscan"
)

// This file is Parse's fast path. encoding/json spends most of its time
// scanning every byte twice (checkValid, then decode) with a per-byte state
// machine, including the large fields Parse never reads (responseObject,
// requestObject's managedFields). The fast path validates the line in one
// tight pass with jsonscan, and decodes only the fields wireEvent names.
//
// It must decode exactly what json.Unmarshal into wireEvent decodes, and
// FuzzParse checks that it does. To keep that true it handles only the shape
// real audit lines have, and answers "fall back" for anything else: invalid
// JSON (so encoding/json writes the error), a top level that is not an
// object, and a key with escapes or non-ASCII bytes in an object whose keys
// it matches (encoding/json matches keys case-insensitively with Unicode
// folding). Values it does not decode by hand go to json.Unmarshal, which
// keeps encoding/json's semantics for odd but valid input, such as a number
// where a string belongs.

// objKind says which wireEvent struct an object's members are decoded into.
type objKind int

const (
	objTop objKind = iota
	objUser
	objObjectRef
	objResponseStatus
	objAnnotations
)

type fastParser struct {
	b       []byte
	w       *wireEvent
	typeErr error // the first error json.Unmarshal reported for a value
}

// parseFast decodes line into w. It reports false when the caller must
// decode with encoding/json instead; w is then in an unspecified state.
func parseFast(line []byte, w *wireEvent) (typeErr error, ok bool) {
	p := fastParser{b: line, w: w}
	i := jsonscan.SkipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return nil, false
	}
	i, ok = p.object(i, 0, objTop)
	if !ok || jsonscan.SkipSpace(line, i) != len(line) {
		return nil, false
	}
	return p.typeErr, true
}

// object validates the object at p.b[i] == '{', nested in depth containers,
// and decodes its members into the struct kind names. It returns the index
// after the closing brace.
func (p *fastParser) object(i, depth int, kind objKind) (int, bool) {
	b := p.b
	depth++
	if depth > jsonscan.MaxDepth {
		return 0, false
	}
	i = jsonscan.SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		key, j, plain, ok := jsonscan.Key(b, i)
		if !ok || !plain {
			// A key that is not plain might name a field once unescaped or
			// folded.
			return 0, false
		}
		if i, ok = p.member(kind, key, j, depth); !ok {
			return 0, false
		}
		var done bool
		if i, done, ok = jsonscan.Next(b, i, '}'); !ok || done {
			return i, ok
		}
	}
}

// member decodes the value at p.b[i] into the field key names in the struct
// kind names, or skips it when key names none. It returns the value's end.
func (p *fastParser) member(kind objKind, key []byte, i, depth int) (int, bool) {
	w := p.w
	switch kind {
	case objTop:
		switch foldKey(key, topKeys) {
		case "kind":
			return p.str(i, depth, &w.Kind)
		case "apiVersion":
			return p.str(i, depth, &w.APIVersion)
		case "auditID":
			return p.str(i, depth, &w.AuditID)
		case "stage":
			return p.str(i, depth, &w.Stage)
		case "requestURI":
			return p.str(i, depth, &w.RequestURI)
		case "verb":
			return p.str(i, depth, &w.Verb)
		case "userAgent":
			return p.str(i, depth, &w.UserAgent)
		case "requestReceivedTimestamp":
			return p.str(i, depth, &w.RequestReceivedTimestamp)
		case "stageTimestamp":
			return p.str(i, depth, &w.StageTimestamp)
		case "sourceIPs":
			return p.strs(i, depth, &w.SourceIPs)
		case "user":
			return p.nested(i, depth, objUser, &w.User)
		case "objectRef":
			return p.nested(i, depth, objObjectRef, &w.ObjectRef)
		case "responseStatus":
			return p.nested(i, depth, objResponseStatus, &w.ResponseStatus)
		case "annotations":
			return p.nested(i, depth, objAnnotations, &w.Annotations)
		case "requestObject":
			end, ok := jsonscan.SkipValue(p.b, i, depth)
			if ok {
				// As json.RawMessage.UnmarshalJSON does.
				w.RequestObject = append(w.RequestObject[:0], p.b[i:end]...)
			}
			return end, ok
		case "responseObject":
			end, ok := jsonscan.SkipValue(p.b, i, depth)
			if ok {
				w.ResponseObject = append(w.ResponseObject[:0], p.b[i:end]...)
			}
			return end, ok
		}
	case objUser:
		switch foldKey(key, userKeys) {
		case "username":
			return p.str(i, depth, &w.User.Username)
		case "groups":
			return p.strs(i, depth, &w.User.Groups)
		}
	case objObjectRef:
		switch foldKey(key, objectRefKeys) {
		case "resource":
			return p.str(i, depth, &w.ObjectRef.Resource)
		case "subresource":
			return p.str(i, depth, &w.ObjectRef.Subresource)
		case "namespace":
			return p.str(i, depth, &w.ObjectRef.Namespace)
		case "name":
			return p.str(i, depth, &w.ObjectRef.Name)
		case "apiGroup":
			return p.str(i, depth, &w.ObjectRef.APIGroup)
		}
	case objResponseStatus:
		switch foldKey(key, responseStatusKeys) {
		case "code":
			return p.int(i, depth, &w.ResponseStatus.Code)
		case "reason":
			return p.str(i, depth, &w.ResponseStatus.Reason)
		}
	case objAnnotations:
		switch foldKey(key, annotationKeys) {
		case "authorization.k8s.io/decision":
			return p.str(i, depth, &w.Annotations.Decision)
		case "authorization.k8s.io/reason":
			return p.str(i, depth, &w.Annotations.Reason)
		}
	}
	return jsonscan.SkipValue(p.b, i, depth)
}

// The json tag names of wireEvent's structs, for foldKey.
var (
	topKeys = []string{"kind", "apiVersion", "auditID", "stage", "requestURI", "verb", "user", "sourceIPs",
		"userAgent", "objectRef", "responseStatus", "annotations", "requestReceivedTimestamp", "stageTimestamp",
		"requestObject", "responseObject"}
	userKeys           = []string{"username", "groups"}
	objectRefKeys      = []string{"resource", "subresource", "namespace", "name", "apiGroup"}
	responseStatusKeys = []string{"code", "reason"}
	annotationKeys     = []string{"authorization.k8s.io/decision", "authorization.k8s.io/reason"}
)

// foldKey returns the name in names that the ASCII key matches, exactly or
// else ignoring case as encoding/json does, or "".
func foldKey(key []byte, names []string) string {
	for _, n := range names {
		if string(key) == n {
			return n
		}
	}
	for _, n := range names {
		if len(n) == len(key) && bytes.EqualFold(key, []byte(n)) {
			return n
		}
	}
	return ""
}

// unmarshal decodes a value the fast path does not handle by hand, keeping
// encoding/json's semantics; like encoding/json it remembers the first
// error and goes on.
func (p *fastParser) unmarshal(val []byte, v any) {
	if err := json.Unmarshal(val, v); err != nil && p.typeErr == nil {
		p.typeErr = err
	}
}

func (p *fastParser) str(i, depth int, dst *string) (int, bool) {
	b := p.b
	if i < len(b) && b[i] == '"' {
		end, esc, ok := jsonscan.SkipString(b, i)
		if !ok {
			return 0, false
		}
		*dst = jsonscan.DecodeString(b[i+1:end-1], esc)
		return end, true
	}
	end, ok := jsonscan.SkipValue(b, i, depth)
	if ok && !isNull(b[i:end]) {
		p.unmarshal(b[i:end], dst)
	}
	return end, ok
}

func (p *fastParser) strs(i, depth int, dst *[]string) (int, bool) {
	end, ok := jsonscan.SkipValue(p.b, i, depth)
	if !ok {
		return 0, false
	}
	val := p.b[i:end]
	if *dst == nil {
		if ss, ok := simpleStrings(val); ok {
			*dst = ss
			return end, true
		}
	}
	// null, odd elements, or a repeated key, where encoding/json
	// decodes into the slice it already filled.
	p.unmarshal(val, dst)
	return end, true
}

// simpleStrings decodes a validated array whose elements are all strings,
// or reports false.
func simpleStrings(val []byte) ([]string, bool) {
	if val[0] != '[' {
		return nil, false
	}
	out := make([]string, 0, 4)
	i := jsonscan.SkipSpace(val, 1)
	if val[i] == ']' {
		return out, true
	}
	for {
		if val[i] != '"' {
			return nil, false
		}
		end, esc, _ := jsonscan.SkipString(val, i)
		out = append(out, jsonscan.DecodeString(val[i+1:end-1], esc))
		i = jsonscan.SkipSpace(val, end)
		if val[i] == ']' {
			return out, true
		}
		i = jsonscan.SkipSpace(val, i+1) // past ','
	}
}

func (p *fastParser) int(i, depth int, dst *int) (int, bool) {
	end, ok := jsonscan.SkipValue(p.b, i, depth)
	if !ok {
		return 0, false
	}
	val := p.b[i:end]
	if isNull(val) {
		return end, true
	}
	if len(val) <= 18 && isInteger(val) {
		n, err := strconv.Atoi(string(val))
		if err == nil {
			*dst = n
			return end, true
		}
	}
	p.unmarshal(val, dst)
	return end, true
}

// nested decodes an object member into its struct; null leaves the struct
// as it is, as in encoding/json, and any other non-object is a type error.
func (p *fastParser) nested(i, depth int, kind objKind, dst any) (int, bool) {
	if i < len(p.b) && p.b[i] == '{' {
		return p.object(i, depth, kind)
	}
	end, ok := jsonscan.SkipValue(p.b, i, depth)
	if ok && !isNull(p.b[i:end]) {
		p.unmarshal(p.b[i:end], dst)
	}
	return end, ok
}

func isNull(val []byte) bool { return string(val) == "null" }

func isInteger(val []byte) bool {
	if len(val) > 0 && val[0] == '-' {
		val = val[1:]
	}
	if len(val) == 0 {
		return false
	}
	for _, c := range val {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
