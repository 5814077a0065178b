package audit

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is Parse's fast path. encoding/json spends most of its time
// scanning every byte twice (checkValid, then decode) with a per-byte state
// machine, including the large fields Parse never reads (responseObject,
// requestObject's managedFields). The fast path validates the line in one
// tight pass, and decodes only the fields wireEvent names.
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

// maxNestingDepth is encoding/json's limit on nested arrays and objects.
const maxNestingDepth = 10000

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
	i := skipWS(line, 0)
	if i >= len(line) || line[i] != '{' {
		return nil, false
	}
	i, ok = p.object(i, 0, objTop)
	if !ok || skipWS(line, i) != len(line) {
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
	if depth > maxNestingDepth {
		return 0, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		end, esc, ok := scanString(b, i)
		if !ok {
			return 0, false
		}
		key := b[i+1 : end-1]
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = skipWS(b, i+1)
		if esc || !isASCII(key) {
			// Its unescaped or folded form might name a field.
			return 0, false
		}
		if i, ok = p.member(kind, key, i, depth); !ok {
			return 0, false
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
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
			end, ok := skipValue(p.b, i, depth)
			if ok {
				// As json.RawMessage.UnmarshalJSON does.
				w.RequestObject = append(w.RequestObject[:0], p.b[i:end]...)
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
	return skipValue(p.b, i, depth)
}

// The json tag names of wireEvent's structs, for foldKey.
var (
	topKeys = []string{"kind", "apiVersion", "auditID", "stage", "requestURI", "verb", "user", "sourceIPs",
		"userAgent", "objectRef", "responseStatus", "annotations", "requestReceivedTimestamp", "stageTimestamp",
		"requestObject"}
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
		end, esc, ok := scanString(b, i)
		if !ok {
			return 0, false
		}
		*dst = decodeString(b[i+1:end-1], esc)
		return end, true
	}
	end, ok := skipValue(b, i, depth)
	if ok && !isNull(b[i:end]) {
		p.unmarshal(b[i:end], dst)
	}
	return end, ok
}

func (p *fastParser) strs(i, depth int, dst *[]string) (int, bool) {
	end, ok := skipValue(p.b, i, depth)
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
	i := skipWS(val, 1)
	if val[i] == ']' {
		return out, true
	}
	for {
		if val[i] != '"' {
			return nil, false
		}
		end, esc, _ := scanString(val, i)
		out = append(out, decodeString(val[i+1:end-1], esc))
		i = skipWS(val, end)
		if val[i] == ']' {
			return out, true
		}
		i = skipWS(val, i+1) // past ','
	}
}

func (p *fastParser) int(i, depth int, dst *int) (int, bool) {
	end, ok := skipValue(p.b, i, depth)
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
	end, ok := skipValue(p.b, i, depth)
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

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// plainStringByte marks the bytes that a JSON string holds as they are: not
// '"', not '\\', not a control character.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString validates the string literal at b[i] == '"' and returns the
// index after its closing quote, and whether it has escapes.
func scanString(b []byte, i int) (end int, esc, ok bool) {
	i++
	for i < len(b) {
		if plainStringByte[b[i]] {
			i++
			continue
		}
		switch b[i] {
		case '"':
			return i + 1, esc, true
		case '\\':
			esc = true
			if i+1 >= len(b) {
				return 0, false, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return 0, false, false
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return 0, false, false
					}
				}
				i += 6
			default:
				return 0, false, false
			}
		default:
			return 0, false, false // a control character
		}
	}
	return 0, false, false
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scanNumber validates the number at b[i] and returns the index after it.
func scanNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return 0, false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// skipValue validates the value at b[i], nested in depth containers, and
// returns the index after it. It keeps its own stack rather than recursing,
// so hostile nesting costs a byte per level.
func skipValue(b []byte, i, depth int) (int, bool) {
	var arr [64]byte
	stack := arr[:0] // the open containers: '{' or '['
	for {
		// A value starts at i.
		if i >= len(b) {
			return 0, false
		}
		var ok bool
		switch c := b[i]; c {
		case '{', '[':
			if depth+len(stack)+1 > maxNestingDepth {
				return 0, false
			}
			stack = append(stack, c)
			i = skipWS(b, i+1)
			if i < len(b) && (c == '{' && b[i] == '}' || c == '[' && b[i] == ']') {
				stack = stack[:len(stack)-1]
				i++
				break
			}
			if c == '{' {
				if i, ok = skipKey(b, i); !ok {
					return 0, false
				}
			}
			continue
		case '"':
			if i, _, ok = scanString(b, i); !ok {
				return 0, false
			}
		case 't':
			if i, ok = skipLiteral(b, i, "true"); !ok {
				return 0, false
			}
		case 'f':
			if i, ok = skipLiteral(b, i, "false"); !ok {
				return 0, false
			}
		case 'n':
			if i, ok = skipLiteral(b, i, "null"); !ok {
				return 0, false
			}
		default:
			if c != '-' && (c < '0' || c > '9') {
				return 0, false
			}
			if i, ok = scanNumber(b, i); !ok {
				return 0, false
			}
		}
		// A value ended at i: close containers until one goes on.
		for {
			if len(stack) == 0 {
				return i, true
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return 0, false
			}
			top := stack[len(stack)-1]
			if c := b[i]; c == ',' {
				i = skipWS(b, i+1)
				if top == '{' {
					if i, ok = skipKey(b, i); !ok {
						return 0, false
					}
				}
				break
			} else if top == '{' && c == '}' || top == '[' && c == ']' {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			return 0, false
		}
	}
}

// skipKey validates `"key" :` at b[i] and returns the index of the value.
func skipKey(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	end, _, ok := scanString(b, i)
	if !ok {
		return 0, false
	}
	i = skipWS(b, end)
	if i >= len(b) || b[i] != ':' {
		return 0, false
	}
	return skipWS(b, i+1), true
}

func skipLiteral(b []byte, i int, lit string) (int, bool) {
	if !bytes.HasPrefix(b[i:], []byte(lit)) {
		return 0, false
	}
	return i + len(lit), true
}

// decodeString decodes the contents of a validated string literal, without
// its quotes, as encoding/json does: escapes resolved, each byte of invalid
// UTF-8 and each unpaired surrogate replaced by U+FFFD.
func decodeString(s []byte, esc bool) string {
	valid := utf8.Valid(s)
	switch {
	case valid && !esc:
		return string(s)
	case valid:
		// Checked once here rather than run by run.
		return string(unescapeRuns(make([]byte, 0, len(s)), s, func(out, run []byte) []byte { return append(out, run...) }))
	}
	return string(unescapeRuns(make([]byte, 0, len(s)), s, appendValidUTF8))
}

// unescapeRuns resolves the escapes in s, appending the runs between them
// with appendRun.
func unescapeRuns(out, s []byte, appendRun func(out, run []byte) []byte) []byte {
	for len(s) > 0 {
		i := bytes.IndexByte(s, '\\')
		if i < 0 {
			i = len(s)
		}
		out = appendRun(out, s[:i])
		s = s[i:]
		if len(s) == 0 {
			break
		}
		// scanString has checked the escape.
		switch c := s[1]; c {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(s)
			s = s[6:]
			if utf16.IsSurrogate(r) {
				if r2 := hex4(s); r2 >= 0 {
					if d := utf16.DecodeRune(r, r2); d != unicode.ReplacementChar {
						out = utf8.AppendRune(out, d)
						s = s[6:]
						continue
					}
				}
				r = unicode.ReplacementChar
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // '"', '\\', '/'
			out = append(out, c)
		}
		s = s[2:]
	}
	return out
}

// hex4 decodes the \uXXXX escape at the start of s, or returns -1.
func hex4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		default: // 'A' to 'F'
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// appendValidUTF8 appends run, replacing each byte of invalid UTF-8 with
// U+FFFD.
func appendValidUTF8(out, run []byte) []byte {
	if utf8.Valid(run) {
		return append(out, run...)
	}
	for len(run) > 0 {
		r, n := utf8.DecodeRune(run)
		if r == utf8.RuneError && n == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, run[:n]...)
		}
		run = run[n:]
	}
	return out
}
