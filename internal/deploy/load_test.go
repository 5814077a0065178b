package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"
)

// root is the repository root, where template.yaml, samconfig.toml and
// env.json live, and org/ with the organization's templates.
const root = "../.."

// Templates, relative to root: the single-cluster stack and the
// organization's two (docs/organization.md).
const (
	singleTemplate  = "template.yaml"
	centralTemplate = "org/central.yaml"
	memberTemplate  = "org/member.yaml"
)

// loaded is a template read two ways.
type loaded struct {
	// path is the template's, relative to root.
	path string
	// raw is the template as JSON, with short-form intrinsics (!Ref) in
	// their long form ({"Ref": ...}) and nothing resolved. Assertions on
	// properties goformation does not model, and the reference checks,
	// read it.
	raw map[string]any
	// typed is goformation's parse, with Ref, GetAtt, Sub, If and
	// FindInMap replaced by markers such as "{Ref:Table}" (see markers).
	// goformation rejects a property name it does not know, so a typo in
	// a resource's properties fails every test.
	typed *cloudformation.Template
}

// unmodelled lists the AWS::Serverless::Function properties that
// goformation v7.14.9 cannot load: LoggingConfig, which it does not know
// and would reject, and ReservedConcurrentExecutions, an int field that
// cannot hold the Fn::If the template writes there. The typed parse drops
// them, and tests assert them on raw.
var unmodelled = []string{"LoggingConfig", "ReservedConcurrentExecutions"}

// unmodelledEvents lists the event source types whose properties
// goformation v7.14.9 models only in part (its Kinesis event lacks the
// error handling ones), so that it would pick the wrong struct or fail:
// the typed parse drops such events, and tests assert them on raw.
var unmodelledEvents = []string{"Kinesis"}

var templates = map[string]func() (*loaded, error){
	singleTemplate:  sync.OnceValues(func() (*loaded, error) { return loadFile(singleTemplate) }),
	centralTemplate: sync.OnceValues(func() (*loaded, error) { return loadFile(centralTemplate) }),
	memberTemplate:  sync.OnceValues(func() (*loaded, error) { return loadFile(memberTemplate) }),
}

func loadFile(path string) (*loaded, error) {
	data, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		return nil, err
	}
	js, err := intrinsics.ProcessYAML(data, &intrinsics.ProcessorOptions{NoProcess: true})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var raw map[string]any
	if err := json.Unmarshal(js, &raw); err != nil {
		return nil, err
	}
	// goformation.OpenWithOptions would read the file itself, but then
	// LoggingConfig fails the whole parse; strip it from a copy first.
	var stripped map[string]any
	if err := json.Unmarshal(js, &stripped); err != nil {
		return nil, err
	}
	for _, r := range asMap(stripped["Resources"]) {
		r := asMap(r)
		if r["Type"] == "AWS::Serverless::Function" {
			props := asMap(r["Properties"])
			for _, p := range unmodelled {
				delete(props, p)
			}
			events := asMap(props["Events"])
			for name, ev := range events {
				if slices.Contains(unmodelledEvents, fmt.Sprint(asMap(ev)["Type"])) {
					delete(events, name)
				}
			}
		}
	}
	// Rules, which goformation does not know, are checked on raw.
	delete(stripped, "Rules")
	js, err = json.Marshal(stripped)
	if err != nil {
		return nil, err
	}
	typed, err := goformation.ParseJSONWithOptions(js, markers(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: goformation: %w", path, err)
	}
	return &loaded{path: path, raw: raw, typed: typed}, nil
}

// load returns template.yaml.
func load(t *testing.T) *loaded { return loadNamed(t, singleTemplate) }

// loadCentral returns org/central.yaml.
func loadCentral(t *testing.T) *loaded { return loadNamed(t, centralTemplate) }

// loadMember returns org/member.yaml.
func loadMember(t *testing.T) *loaded { return loadNamed(t, memberTemplate) }

func loadNamed(t *testing.T, path string) *loaded {
	t.Helper()
	l, err := templates[path]()
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// markers returns intrinsic handlers that keep references visible instead
// of resolving them as goformation does by default (to parameter defaults,
// or to nothing for a resource).
//
// A Ref to a parameter that goformation's structs need as a number or a
// boolean (a Number parameter; a String parameter allowing exactly "true"
// and "false") yields the parameter's default in that type instead, because
// a marker string would not decode; tests assert those references on raw.
func markers(raw map[string]any) *intrinsics.ProcessorOptions {
	params := asMap(raw["Parameters"])
	ref := func(_ string, in any, _ any) any {
		name, _ := in.(string)
		if p := asMap(params[name]); p != nil {
			switch {
			case p["Type"] == "Number":
				if d, ok := p["Default"].(float64); ok {
					return d
				}
			case slices.Equal(asStrings(p["AllowedValues"]), []string{"true", "false"}):
				return p["Default"] == "true"
			}
		}
		return "{Ref:" + name + "}"
	}
	getAtt := func(_ string, in any, _ any) any {
		if parts := asStrings(in); len(parts) == 2 {
			return "{GetAtt:" + parts[0] + "." + parts[1] + "}"
		}
		return fmt.Sprintf("{GetAtt:%v}", in)
	}
	sub := func(_ string, in any, _ any) any {
		if arr, ok := in.([]any); ok && len(arr) > 0 {
			in = arr[0]
		}
		return fmt.Sprintf("{Sub:%v}", in)
	}
	list := func(name string) intrinsics.IntrinsicHandler {
		return func(_ string, in any, _ any) any {
			var parts []string
			for _, a := range asSlice(in) {
				parts = append(parts, render(a))
			}
			return "{" + name + ":" + strings.Join(parts, "|") + "}"
		}
	}
	return &intrinsics.ProcessorOptions{IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{
		"Ref":           ref,
		"Fn::GetAtt":    getAtt,
		"Fn::Sub":       sub,
		"Fn::If":        list("If"),
		"Fn::FindInMap": list("FindInMap"),
	}}
}

// render writes an intrinsic's argument into a marker: strings (including
// nested markers) as they are, anything else as JSON.
func render(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// asStrings returns v as a []string when it is a list of strings (or a
// "A.B" GetAtt string, split at its first dot), and nil otherwise.
func asStrings(v any) []string {
	switch v := v.(type) {
	case string:
		if a, b, ok := strings.Cut(v, "."); ok {
			return []string{a, b}
		}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil
			}
			out = append(out, s)
		}
		return out
	}
	return nil
}

// rawResource returns a resource of the raw template, failing the test if
// it is missing.
func rawResource(t *testing.T, l *loaded, name string) map[string]any {
	t.Helper()
	r := asMap(asMap(l.raw["Resources"])[name])
	if r == nil {
		t.Fatalf("%s has no resource %s", l.path, name)
	}
	return r
}

// rawProperty follows keys from a raw resource's Properties.
func rawProperty(t *testing.T, l *loaded, resource string, keys ...string) any {
	t.Helper()
	var v any = asMap(rawResource(t, l, resource)["Properties"])
	for _, k := range keys {
		m := asMap(v)
		if m == nil {
			t.Fatalf("%s: %s: %s is not a map", l.path, resource, strings.Join(keys, "."))
		}
		v = m[k]
	}
	return v
}
