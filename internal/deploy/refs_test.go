package deploy

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// pseudoParameters are the names a Ref may use without declaring them.
var pseudoParameters = []string{
	"AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition",
	"AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix",
}

// getAttAttributes lists, per resource type the template uses, the
// attributes Fn::GetAtt may read (the CloudFormation reference's "Return
// values" for each type).
var getAttAttributes = map[string][]string{
	"AWS::DynamoDB::Table":      {"Arn", "StreamArn"},
	"AWS::SQS::Queue":           {"Arn", "QueueName", "QueueUrl"},
	"AWS::SNS::Topic":           {"TopicArn", "TopicName"},
	"AWS::Serverless::Function": {"Arn"},
	"AWS::Logs::LogGroup":       {"Arn"},
	"AWS::Logs::Destination":    {"Arn"},
	"AWS::Kinesis::Stream":      {"Arn"},
	"AWS::IAM::Role":            {"Arn", "RoleId"},
}

// reference is one use of another template entity.
type reference struct {
	at     string // where, as a path in the template
	kind   string // "Ref", "GetAtt", "Condition", "FindInMap"
	target string
	attr   string // GetAtt's attribute
	// cond is the Fn::If condition the reference sits under, if any, so a
	// reference to a conditional resource inside the matching branch is
	// allowed.
	cond string
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

// collect walks v and returns every reference in it.
func collect(at string, v any, cond string) []reference {
	var out []reference
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 1 {
			for k, arg := range v {
				switch k {
				case "Ref":
					s, _ := arg.(string)
					return []reference{{at: at, kind: "Ref", target: s, cond: cond}}
				case "Fn::GetAtt":
					parts := asStrings(arg)
					if len(parts) != 2 {
						return []reference{{at: at, kind: "GetAtt", target: fmt.Sprint(arg), cond: cond}}
					}
					return []reference{{at: at, kind: "GetAtt", target: parts[0], attr: parts[1], cond: cond}}
				case "Fn::Sub":
					return subRefs(at, arg, cond)
				case "Fn::If":
					args := asSlice(arg)
					if len(args) != 3 {
						return []reference{{at: at, kind: "Condition", target: fmt.Sprint(arg)}}
					}
					name, _ := args[0].(string)
					out = append(out, reference{at: at, kind: "Condition", target: name})
					out = append(out, collect(at+"/If:true", args[1], name)...)
					out = append(out, collect(at+"/If:false", args[2], cond)...)
					return out
				case "Fn::FindInMap":
					args := asSlice(arg)
					if len(args) > 0 {
						name, _ := args[0].(string)
						out = append(out, reference{at: at, kind: "FindInMap", target: name, cond: cond})
					}
					for i, a := range args {
						out = append(out, collect(fmt.Sprintf("%s/FindInMap[%d]", at, i), a, cond)...)
					}
					return out
				case "Condition":
					// A condition function naming another condition.
					if s, ok := arg.(string); ok {
						return []reference{{at: at, kind: "Condition", target: s}}
					}
				}
			}
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, collect(at+"/"+k, v[k], cond)...)
		}
	case []any:
		for i, e := range v {
			out = append(out, collect(fmt.Sprintf("%s[%d]", at, i), e, cond)...)
		}
	}
	return out
}

// subRefs returns the references in a Fn::Sub string: ${Name} is a Ref,
// ${Name.Attr} a GetAtt, ${!Literal} nothing, and names bound by the
// second argument's map nothing either.
func subRefs(at string, arg any, cond string) []reference {
	src, _ := arg.(string)
	var bound map[string]any
	var out []reference
	if args := asSlice(arg); len(args) == 2 {
		src, _ = args[0].(string)
		bound = asMap(args[1])
		for k, v := range bound {
			out = append(out, collect(at+"/Sub:"+k, v, cond)...)
		}
	}
	for _, m := range subVar.FindAllStringSubmatch(src, -1) {
		name := m[1]
		if strings.HasPrefix(name, "!") {
			continue
		}
		if _, ok := bound[name]; ok {
			continue
		}
		if res, attr, ok := strings.Cut(name, "."); ok {
			out = append(out, reference{at: at, kind: "GetAtt", target: res, attr: attr, cond: cond})
		} else {
			out = append(out, reference{at: at, kind: "Ref", target: name, cond: cond})
		}
	}
	return out
}

// TestReferences checks every reference in each template: goformation
// resolves a reference to a missing entity silently, and CloudFormation
// only refuses it at deploy time.
func TestReferences(t *testing.T) {
	for _, path := range []string{singleTemplate, centralTemplate, memberTemplate} {
		t.Run(path, func(t *testing.T) { checkReferences(t, loadNamed(t, path)) })
	}
}

func checkReferences(t *testing.T, l *loaded) {
	resources := asMap(l.raw["Resources"])
	params := asMap(l.raw["Parameters"])
	conditions := asMap(l.raw["Conditions"])
	mappings := asMap(l.raw["Mappings"])

	var refs []reference
	for _, section := range []string{"Resources", "Outputs", "Conditions", "Rules"} {
		entries := asMap(l.raw[section])
		names := make([]string, 0, len(entries))
		for n := range entries {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			e := asMap(entries[name])
			at := section + "/" + name
			if section == "Conditions" || section == "Rules" {
				refs = append(refs, collect(at, entries[name], "")...)
				continue
			}
			// A Condition attribute names a condition; the entity's own
			// condition also guards what it references.
			own, _ := e["Condition"].(string)
			if own != "" {
				refs = append(refs, reference{at: at + "/Condition", kind: "Condition", target: own})
			}
			for k, v := range e {
				if k == "Condition" || k == "Type" {
					continue
				}
				refs = append(refs, collect(at+"/"+k, v, own)...)
			}
		}
	}
	if len(refs) < 10 {
		t.Fatalf("found only %d references; the walk is broken", len(refs))
	}

	for _, r := range refs {
		switch r.kind {
		case "Ref":
			_, isParam := params[r.target]
			_, isRes := resources[r.target]
			if !isParam && !isRes && !slices.Contains(pseudoParameters, r.target) {
				t.Errorf("%s: Ref to %q, which is no parameter, resource or pseudo parameter", r.at, r.target)
			}
		case "GetAtt":
			res := asMap(resources[r.target])
			if res == nil {
				t.Errorf("%s: GetAtt on %q, which is no resource", r.at, r.target)
				continue
			}
			typ, _ := res["Type"].(string)
			if !slices.Contains(getAttAttributes[typ], r.attr) {
				t.Errorf("%s: GetAtt %s.%s: %s has no attribute %q (known: %v)", r.at, r.target, r.attr, typ, r.attr, getAttAttributes[typ])
			}
		case "Condition":
			if _, ok := conditions[r.target]; !ok {
				t.Errorf("%s: condition %q is not defined", r.at, r.target)
			}
		case "FindInMap":
			if _, ok := mappings[r.target]; !ok {
				t.Errorf("%s: mapping %q is not defined", r.at, r.target)
			}
		}
		// A resource that exists only under a condition may be referenced
		// only where the same condition holds; elsewhere the stack fails
		// to deploy whenever the condition is false.
		if r.kind == "Ref" || r.kind == "GetAtt" {
			if c, _ := asMap(resources[r.target])["Condition"].(string); c != "" && c != r.cond {
				t.Errorf("%s: references %s, which exists only if %s, outside that condition", r.at, r.target, c)
			}
		}
	}
}

// TestReferenceWalk makes sure the walk above finds what it must, so that
// TestReferences cannot pass by finding nothing.
func TestReferenceWalk(t *testing.T) {
	doc := map[string]any{
		"A": map[string]any{"Ref": "P"},
		"B": map[string]any{"Fn::GetAtt": "Q.Arn"},
		"C": map[string]any{"Fn::GetAtt": []any{"R", "QueueName"}},
		"D": map[string]any{"Fn::Sub": "arn:${AWS::Partition}:x:${S}:${T.Arn}:${!Literal}"},
		"E": map[string]any{"Fn::Sub": []any{"${U}-${V}", map[string]any{"V": map[string]any{"Ref": "W"}}}},
		"F": map[string]any{"Fn::If": []any{"Cond", map[string]any{"Ref": "X"}, map[string]any{"Ref": "Y"}}},
		"G": []any{map[string]any{"Fn::FindInMap": []any{"M", map[string]any{"Ref": "Z"}, "k"}}},
	}
	var got []string
	for _, r := range collect("", doc, "") {
		s := r.kind + ":" + r.target
		if r.attr != "" {
			s += "." + r.attr
		}
		if r.cond != "" {
			s += "?" + r.cond
		}
		got = append(got, s)
	}
	sort.Strings(got)
	want := []string{
		"Condition:Cond",
		"FindInMap:M",
		"GetAtt:Q.Arn", "GetAtt:R.QueueName", "GetAtt:T.Arn",
		"Ref:AWS::Partition", "Ref:P", "Ref:S", "Ref:U", "Ref:W", "Ref:X?Cond", "Ref:Y", "Ref:Z",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("collect() (-want +got):\n%s", diff)
	}
}
