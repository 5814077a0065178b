package deploy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// evaluator resolves a raw template's intrinsic functions as
// CloudFormation would for one deployment: parameter values (defaults
// unless given), pseudo parameters, conditions. A GetAtt, whose value
// only a deployment knows, becomes the marker "{GetAtt:Name.Attr}", as in
// the typed parse. It covers what the templates use and refuses the rest,
// so that a test cannot pass on something it did not understand.
type evaluator struct {
	l      *loaded
	params map[string]any // string or []string
	pseudo map[string]string
	conds  map[string]bool
}

// noValue is what Ref AWS::NoValue evaluates to: the enclosing list
// element or map entry is dropped.
type noValueT struct{}

var noValue = noValueT{}

// Pseudo parameters of the deployments the tests evaluate.
const (
	testRegion    = "eu-west-1"
	testAccountID = "999999999999"
)

// newEvaluator evaluates l's parameters at their defaults, overridden by
// given (a CommaDelimitedList as its comma-separated string), in a stack
// named stackName.
func newEvaluator(t *testing.T, l *loaded, stackName string, given map[string]string) *evaluator {
	t.Helper()
	e := &evaluator{
		l:      l,
		params: map[string]any{},
		pseudo: map[string]string{
			"AWS::Region":    testRegion,
			"AWS::AccountId": testAccountID,
			"AWS::Partition": "aws",
			"AWS::StackName": stackName,
			"AWS::URLSuffix": "amazonaws.com",
		},
		conds: map[string]bool{},
	}
	params := asMap(l.raw["Parameters"])
	for name := range given {
		if _, ok := params[name]; !ok {
			t.Fatalf("%s has no parameter %s", l.path, name)
		}
	}
	for name, p := range params {
		p := asMap(p)
		v, ok := given[name]
		if !ok {
			d, has := p["Default"]
			if !has {
				t.Fatalf("%s: parameter %s has no default; give it", l.path, name)
			}
			v = fmt.Sprint(d)
		}
		if p["Type"] == "CommaDelimitedList" {
			e.params[name] = strings.Split(v, ",")
		} else {
			e.params[name] = v
		}
	}
	var names []string
	for name := range asMap(l.raw["Conditions"]) {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := e.condition(name, nil); err != nil {
			t.Fatalf("%s: condition %s: %v", l.path, name, err)
		}
	}
	return e
}

// condition evaluates a named condition, once.
func (e *evaluator) condition(name string, seen []string) (bool, error) {
	if v, ok := e.conds[name]; ok {
		return v, nil
	}
	if slices.Contains(seen, name) {
		return false, fmt.Errorf("condition %s refers to itself", name)
	}
	def, ok := asMap(e.l.raw["Conditions"])[name]
	if !ok {
		return false, fmt.Errorf("no condition %s", name)
	}
	v, err := e.boolean(def, append(seen, name))
	if err != nil {
		return false, err
	}
	e.conds[name] = v
	return v, nil
}

// boolean evaluates a condition function.
func (e *evaluator) boolean(v any, seen []string) (bool, error) {
	fn, arg, ok := intrinsic(v)
	if !ok {
		return false, fmt.Errorf("%v is no condition function", v)
	}
	args := asSlice(arg)
	switch fn {
	case "Condition":
		name, _ := arg.(string)
		return e.condition(name, seen)
	case "Fn::Not":
		if len(args) != 1 {
			return false, fmt.Errorf("Fn::Not takes one argument: %v", arg)
		}
		b, err := e.boolean(args[0], seen)
		return !b, err
	case "Fn::And", "Fn::Or":
		if len(args) < 2 {
			return false, fmt.Errorf("%s takes two or more arguments: %v", fn, arg)
		}
		and := fn == "Fn::And"
		for _, a := range args {
			b, err := e.boolean(a, seen)
			if err != nil {
				return false, err
			}
			if b != and {
				return !and, nil
			}
		}
		return and, nil
	case "Fn::Equals":
		if len(args) != 2 {
			return false, fmt.Errorf("Fn::Equals takes two arguments: %v", arg)
		}
		a, err := e.value(args[0])
		if err != nil {
			return false, err
		}
		b, err := e.value(args[1])
		if err != nil {
			return false, err
		}
		return cmp.Equal(a, b), nil
	case "Fn::EachMemberEquals":
		// A rule's: every member of a list equals a string.
		if len(args) != 2 {
			return false, fmt.Errorf("Fn::EachMemberEquals takes two arguments: %v", arg)
		}
		list, err := e.strs(args[0])
		if err != nil {
			return false, err
		}
		s, err := e.str(args[1])
		if err != nil {
			return false, err
		}
		for _, m := range list {
			if m != s {
				return false, nil
			}
		}
		return true, nil
	}
	return false, fmt.Errorf("%s is no condition function", fn)
}

// intrinsic reports whether v is an intrinsic function call, a map of one
// key that names one.
func intrinsic(v any) (fn string, arg any, ok bool) {
	m := asMap(v)
	if len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
			return k, a, true
		}
	}
	return "", nil, false
}

// value evaluates v: a string, a number, a list, a map, or a function.
func (e *evaluator) value(v any) (any, error) {
	if fn, arg, ok := intrinsic(v); ok && fn != "Condition" {
		return e.call(fn, arg)
	}
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			r, err := e.value(x)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if r != noValue {
				out[k] = r
			}
		}
		return out, nil
	case []any:
		out := []any{}
		for i, x := range v {
			r, err := e.value(x)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			if r != noValue {
				out = append(out, r)
			}
		}
		return out, nil
	case float64:
		return fmt.Sprint(v), nil
	case bool:
		return fmt.Sprint(v), nil
	}
	return v, nil
}

// str evaluates v to a string.
func (e *evaluator) str(v any) (string, error) {
	r, err := e.value(v)
	if err != nil {
		return "", err
	}
	s, ok := r.(string)
	if !ok {
		return "", fmt.Errorf("%v is %T, not a string", v, r)
	}
	return s, nil
}

// strs evaluates v to a list of strings.
func (e *evaluator) strs(v any) ([]string, error) {
	r, err := e.value(v)
	if err != nil {
		return nil, err
	}
	switch r := r.(type) {
	case []string:
		return r, nil
	case []any:
		out := make([]string, len(r))
		for i, x := range r {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("element %d of %v is %T, not a string", i, v, x)
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, fmt.Errorf("%v is %T, not a list", v, r)
}

func (e *evaluator) ref(name string) (any, error) {
	if name == "AWS::NoValue" {
		return noValue, nil
	}
	if v, ok := e.pseudo[name]; ok {
		return v, nil
	}
	if v, ok := e.params[name]; ok {
		return v, nil
	}
	if _, ok := asMap(e.l.raw["Resources"])[name]; ok {
		return "{Ref:" + name + "}", nil
	}
	return nil, fmt.Errorf("Ref %s: no such parameter or resource", name)
}

func (e *evaluator) call(fn string, arg any) (any, error) {
	args := asSlice(arg)
	switch fn {
	case "Ref":
		name, _ := arg.(string)
		return e.ref(name)
	case "Fn::GetAtt":
		parts := asStrings(arg)
		if len(parts) != 2 {
			return nil, fmt.Errorf("Fn::GetAtt %v", arg)
		}
		if _, ok := asMap(e.l.raw["Resources"])[parts[0]]; !ok {
			return nil, fmt.Errorf("Fn::GetAtt on %s: no such resource", parts[0])
		}
		return "{GetAtt:" + parts[0] + "." + parts[1] + "}", nil
	case "Fn::If":
		if len(args) != 3 {
			return nil, fmt.Errorf("Fn::If takes three arguments: %v", arg)
		}
		name, _ := args[0].(string)
		b, err := e.condition(name, nil)
		if err != nil {
			return nil, err
		}
		if b {
			return e.value(args[1])
		}
		return e.value(args[2])
	case "Fn::Join":
		if len(args) != 2 {
			return nil, fmt.Errorf("Fn::Join takes two arguments: %v", arg)
		}
		sep, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("Fn::Join's delimiter must be a plain string: %v", args[0])
		}
		parts, err := e.strs(args[1])
		if err != nil {
			return nil, fmt.Errorf("Fn::Join: %w", err)
		}
		return strings.Join(parts, sep), nil
	case "Fn::Split":
		if len(args) != 2 {
			return nil, fmt.Errorf("Fn::Split takes two arguments: %v", arg)
		}
		sep, _ := args[0].(string)
		s, err := e.str(args[1])
		if err != nil {
			return nil, err
		}
		return strings.Split(s, sep), nil
	case "Fn::Sub":
		return e.sub(arg)
	}
	return nil, fmt.Errorf("%s is not evaluated here", fn)
}

// sub evaluates Fn::Sub: ${Name} is a Ref (or a variable of the second
// argument), ${Name.Attr} a GetAtt, ${!Literal} the text ${Literal}.
func (e *evaluator) sub(arg any) (any, error) {
	src, ok := arg.(string)
	vars := map[string]string{}
	if !ok {
		args := asSlice(arg)
		if len(args) != 2 {
			return nil, fmt.Errorf("Fn::Sub %v", arg)
		}
		if src, ok = args[0].(string); !ok {
			return nil, fmt.Errorf("Fn::Sub's string is %T", args[0])
		}
		for k, v := range asMap(args[1]) {
			s, err := e.str(v)
			if err != nil {
				return nil, fmt.Errorf("Fn::Sub variable %s: %w", k, err)
			}
			vars[k] = s
		}
	}
	var errs []error
	out := subVar.ReplaceAllStringFunc(src, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") {
			return "${" + name[1:] + "}"
		}
		if v, ok := vars[name]; ok {
			return v
		}
		if res, attr, ok := strings.Cut(name, "."); ok {
			v, err := e.call("Fn::GetAtt", []any{res, attr})
			if err != nil {
				errs = append(errs, err)
				return ""
			}
			return v.(string)
		}
		v, err := e.ref(name)
		if err != nil {
			errs = append(errs, err)
			return ""
		}
		s, ok := v.(string)
		if !ok {
			errs = append(errs, fmt.Errorf("${%s} is a %T, which Fn::Sub cannot hold", name, v))
		}
		return s
	})
	return out, errors.Join(errs...)
}

// rules evaluates the template's rule assertions (rules without a
// RuleCondition) and returns the descriptions of those that fail.
func (e *evaluator) rules(t *testing.T) []string {
	t.Helper()
	var failed []string
	for name, r := range asMap(e.l.raw["Rules"]) {
		r := asMap(r)
		if _, ok := r["RuleCondition"]; ok {
			t.Fatalf("%s: rule %s has a RuleCondition, which the evaluator does not take", e.l.path, name)
		}
		for _, a := range asSlice(r["Assertions"]) {
			ok, err := e.boolean(asMap(a)["Assert"], nil)
			if err != nil {
				t.Fatalf("%s: rule %s: %v", e.l.path, name, err)
			}
			if !ok {
				failed = append(failed, fmt.Sprint(asMap(a)["AssertDescription"]))
			}
		}
	}
	sort.Strings(failed)
	return failed
}

// property evaluates a resource's property.
func (e *evaluator) property(t *testing.T, resource string, keys ...string) any {
	t.Helper()
	v, err := e.value(rawProperty(t, e.l, resource, keys...))
	if err != nil {
		t.Fatalf("%s: %s.%s: %v", e.l.path, resource, strings.Join(keys, "."), err)
	}
	return v
}

// TestEvaluator checks the evaluator on what the templates rely on it for.
func TestEvaluator(t *testing.T) {
	l := &loaded{path: "test", raw: map[string]any{
		"Parameters": map[string]any{
			"Name": map[string]any{"Type": "String", "Default": "x"},
			"List": map[string]any{"Type": "CommaDelimitedList", "Default": ""},
		},
		"Conditions": map[string]any{
			"HasList": map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Fn::Join": []any{"", map[string]any{"Ref": "List"}}}, ""}}}},
			"Both": map[string]any{"Fn::And": []any{
				map[string]any{"Condition": "HasList"},
				map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "Name"}, "x"}},
			}},
		},
		"Resources": map[string]any{"R": map[string]any{"Type": "AWS::SQS::Queue"}},
	}}
	doc := []any{
		map[string]any{"Fn::Sub": "arn:${AWS::Partition}:${Name}:${R.Arn}:${!Keep}"},
		map[string]any{"Fn::Sub": []any{`["${L}"]`, map[string]any{"L": map[string]any{"Fn::Join": []any{`","`, map[string]any{"Ref": "List"}}}}}},
		map[string]any{"Fn::If": []any{"Both", "both", map[string]any{"Ref": "AWS::NoValue"}}},
		map[string]any{"Fn::If": []any{"HasList", map[string]any{"Ref": "R"}, "none"}},
	}
	tests := []struct {
		given map[string]string
		want  []any
	}{
		{nil, []any{"arn:aws:x:{GetAtt:R.Arn}:${Keep}", `[""]`, "none"}},
		{map[string]string{"List": "a,b"}, []any{"arn:aws:x:{GetAtt:R.Arn}:${Keep}", `["a","b"]`, "both", "{Ref:R}"}},
	}
	for _, tt := range tests {
		e := newEvaluator(t, l, "stack", tt.given)
		got, err := e.value(doc)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("given %v (-want +got):\n%s", tt.given, diff)
		}
	}
	e := newEvaluator(t, l, "stack", nil)
	if _, err := e.value(map[string]any{"Fn::Base64": "x"}); err == nil {
		t.Error("an unknown function evaluated without error")
	}
	if _, err := e.value(map[string]any{"Ref": "Missing"}); err == nil {
		t.Error("a Ref to nothing evaluated without error")
	}
}
