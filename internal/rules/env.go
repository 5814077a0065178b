package rules

import (
	"encoding/json"
	"fmt"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"

	"github.com/anonwatch/anonwatch/internal/audit"
)

// Variable documents one name a rule's CEL expressions can use.
type Variable struct {
	Name string
	Type string // CEL type, as the checker prints it
	Doc  string
}

// Indices of the CEL variables; they index activation.vals.
const (
	vUser = iota
	vGroups
	vAnonymous
	vVerb
	vRequestURI
	vPath
	vSrcIP
	vForwardedFor
	vUserAgent
	vResource
	vSubresource
	vNamespace
	vName
	vAPIGroup
	vCode
	vReason
	vDecision
	vDecisionReason
	vStage
	vClusterName
	vIsHealthPath
	vRequestObject
	vResponseObject
	vDamaged
	vLineSize
	numVars
)

type varDef struct {
	name string
	typ  *cel.Type
	doc  string
}

// varDefs is indexed by the v* constants; varIndex must agree with it, which
// a test checks.
var varDefs = [numVars]varDef{
	vUser:           {"user", cel.StringType, `user.username, e.g. "system:anonymous" or "kubernetes-admin".`},
	vGroups:         {"groups", cel.ListType(cel.StringType), `user.groups, as logged, e.g. ["system:unauthenticated"].`},
	vAnonymous:      {"anonymous", cel.BoolType, `True when user is "system:anonymous".`},
	vVerb:           {"verb", cel.StringType, `The Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection; for non-resource URLs the HTTP method in lower case.`},
	vRequestURI:     {"request_uri", cel.StringType, `requestURI with its query. Client-controlled.`},
	vPath:           {"path", cel.StringType, `requestURI without its query string. Client-controlled.`},
	vSrcIP:          {"src_ip", cel.StringType, `The connection's address (the last sourceIPs entry) in canonical form, or "" when it is not an IP address. The only trustworthy address.`},
	vForwardedFor:   {"forwarded_for", cel.ListType(cel.StringType), `The sourceIPs entries before the last (X-Forwarded-For, X-Real-IP). Client-controlled, never verified.`},
	vUserAgent:      {"user_agent", cel.StringType, `userAgent. Client-controlled.`},
	vResource:       {"resource", cel.StringType, `objectRef.resource, e.g. "pods"; "" for a non-resource URL.`},
	vSubresource:    {"subresource", cel.StringType, `objectRef.subresource, e.g. "token" or "exec".`},
	vNamespace:      {"ns", cel.StringType, `objectRef.namespace; "" for cluster-scoped requests. (CEL reserves the word namespace.)`},
	vName:           {"name", cel.StringType, `objectRef.name.`},
	vAPIGroup:       {"api_group", cel.StringType, `objectRef.apiGroup; "" for the core group.`},
	vCode:           {"code", cel.IntType, `responseStatus.code, or 0 when the record has none.`},
	vReason:         {"reason", cel.StringType, `responseStatus.reason, e.g. "Forbidden".`},
	vDecision:       {"decision", cel.StringType, `The authorization.k8s.io/decision annotation: "allow" or "forbid".`},
	vDecisionReason: {"decision_reason", cel.StringType, `The authorization.k8s.io/reason annotation, e.g. the binding that allowed the request.`},
	vStage:          {"stage", cel.StringType, `The audit stage, e.g. "ResponseComplete".`},
	vClusterName:    {"cluster_name", cel.StringType, `The EKS cluster, from the log group /aws/eks/<cluster>/cluster.`},
	vIsHealthPath:   {"is_health_path", cel.BoolType, `True when path is /healthz, /livez or /readyz or lies below one of them ("/healthz/etcd", not "/healthzfoo").`},
	vRequestObject:  {"request_object", cel.DynType, `The decoded requestObject JSON (maps, lists, strings, doubles, bools), or null when absent. Only logged at audit level Request and above. Client-controlled.`},
	vDamaged:        {"damaged", cel.StringType, `Why the line could not be parsed whole, or "" for a whole line: "truncated" (cut and marked [Truncated...]), "too_large" (over the parser's bound), "malformed" (not whole JSON: cut without a mark, or damaged), "over_bound" (cut to a prefix to keep its delivery within the decoder's memory bound). A damaged line's other variables hold what survived of it, empty where nothing did.`},
	vLineSize:       {"line_size", cel.IntType, `The length of the log line in bytes, as logged.`},
	vResponseObject: {"response_object", cel.DynType, `The decoded responseObject JSON, or null when absent: the object as the request left it (the binding a patch produced, say), or a Status. Only logged at audit level RequestResponse; dropped from events kube-apiserver truncated.`},
}

// varIndex maps a CEL name to its index, or -1. A switch beats a map lookup
// on this per-event path.
func varIndex(name string) int {
	switch name {
	case "user":
		return vUser
	case "groups":
		return vGroups
	case "anonymous":
		return vAnonymous
	case "verb":
		return vVerb
	case "request_uri":
		return vRequestURI
	case "path":
		return vPath
	case "src_ip":
		return vSrcIP
	case "forwarded_for":
		return vForwardedFor
	case "user_agent":
		return vUserAgent
	case "resource":
		return vResource
	case "subresource":
		return vSubresource
	case "ns":
		return vNamespace
	case "name":
		return vName
	case "api_group":
		return vAPIGroup
	case "code":
		return vCode
	case "reason":
		return vReason
	case "decision":
		return vDecision
	case "decision_reason":
		return vDecisionReason
	case "stage":
		return vStage
	case "cluster_name":
		return vClusterName
	case "is_health_path":
		return vIsHealthPath
	case "request_object":
		return vRequestObject
	case "response_object":
		return vResponseObject
	case "damaged":
		return vDamaged
	case "line_size":
		return vLineSize
	}
	return -1
}

// Variables describes the names a rule's CEL expressions can use, in a
// stable order, for the README and `anonwatch rules list`.
func Variables() []Variable {
	out := make([]Variable, 0, numVars)
	for _, d := range varDefs {
		out = append(out, Variable{Name: d.name, Type: d.typ.String(), Doc: d.doc})
	}
	return out
}

// newEnv returns the CEL environment every rule expression is compiled in.
func newEnv() (*cel.Env, error) {
	opts := make([]cel.EnvOption, 0, numVars)
	for _, d := range varDefs {
		opts = append(opts, cel.Variable(d.name, d.typ))
	}
	return cel.NewEnv(opts...)
}

// activation feeds one event to the rule programs. It resolves each variable
// the first time a program asks for it and keeps the result until reset, so
// an event costs one conversion per variable whatever the number of rules,
// and request_object is decoded at most once and only when evaluated.
type activation struct {
	ev      *audit.Event
	cluster string
	adapter types.Adapter
	vals    [numVars]ref.Val
	marks   []int
	decodes int // request_object decodes, for tests

	clusterName string
	clusterVal  ref.Val
}

func newActivation() *activation { return &activation{adapter: types.DefaultTypeAdapter} }

var _ interpreter.Activation = (*activation)(nil)

func (a *activation) reset(ev *audit.Event, cluster string) {
	a.ev, a.cluster = ev, cluster
	clear(a.vals[:])
	a.marks = a.marks[:0]
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	i := varIndex(name)
	if i < 0 {
		return nil, false
	}
	if v := a.vals[i]; v != nil {
		return v, true
	}
	v := a.value(i)
	a.vals[i] = v
	return v, true
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

func (a *activation) value(i int) ref.Val {
	ev := a.ev
	switch i {
	case vUser:
		if ev.User.Username == audit.Anonymous {
			return anonymousVal
		}
		return str(ev.User.Username)
	case vGroups:
		if len(ev.User.Groups) == 1 && ev.User.Groups[0] == audit.Unauthenticated {
			return unauthenticatedGroupsVal
		}
		return types.NewStringList(a.adapter, ev.User.Groups)
	case vAnonymous:
		return types.Bool(ev.IsAnonymous())
	case vVerb:
		return interned(ev.Verb)
	case vRequestURI:
		return str(ev.RequestURI)
	case vPath:
		return str(ev.Path())
	case vSrcIP:
		return str(ev.SrcIP())
	case vForwardedFor:
		return types.NewStringList(a.adapter, ev.ForwardedFor())
	case vUserAgent:
		return str(ev.UserAgent)
	case vResource:
		return interned(ev.ObjectRef.Resource)
	case vSubresource:
		return interned(ev.ObjectRef.Subresource)
	case vNamespace:
		return str(ev.ObjectRef.Namespace)
	case vName:
		return str(ev.ObjectRef.Name)
	case vAPIGroup:
		return str(ev.ObjectRef.APIGroup)
	case vCode:
		if c := ev.ResponseCode; c >= 0 && c < len(codeVals) {
			return codeVals[c]
		}
		return types.Int(ev.ResponseCode)
	case vReason:
		return interned(ev.ResponseReason)
	case vDecision:
		return interned(ev.Decision)
	case vDecisionReason:
		return str(ev.DecisionReason)
	case vStage:
		return interned(ev.Stage)
	case vClusterName:
		// The pooled activation keeps the boxed name: a batch has one
		// cluster, so this converts it once per batch, not per event.
		if a.clusterVal == nil || a.clusterName != a.cluster {
			a.clusterName, a.clusterVal = a.cluster, str(a.cluster)
		}
		return a.clusterVal
	case vIsHealthPath:
		return types.Bool(ev.IsHealthPath())
	case vRequestObject:
		return a.decode("request_object", a.ev.RequestObject)
	case vResponseObject:
		return a.decode("response_object", a.ev.ResponseObject)
	case vDamaged:
		return interned(ev.Damage)
	case vLineSize:
		return types.Int(ev.LineSize)
	}
	return types.NewErr("no variable %d", i)
}

// Values that would otherwise be boxed into a ref.Val, one allocation each,
// on every event.
var (
	emptyVal                 ref.Val = types.String("")
	anonymousVal             ref.Val = types.String(audit.Anonymous)
	unauthenticatedGroupsVal         = types.NewStringList(types.DefaultTypeAdapter, []string{audit.Unauthenticated})
	codeVals                         = func() (v [600]ref.Val) {
		for i := range v {
			v[i] = types.Int(i)
		}
		return v
	}()
	internedVals = func() map[string]ref.Val {
		m := map[string]ref.Val{}
		for _, s := range []string{
			// verbs
			"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection",
			"post", "put", "head", "options",
			// resources and subresources anonymous requests touch
			"pods", "secrets", "configmaps", "serviceaccounts", "namespaces", "nodes",
			"services", "deployments", "rolebindings", "clusterrolebindings",
			"token", "exec", "log", "status", "proxy", "attach", "portforward",
			// reasons, decisions, stages
			"Forbidden", "Unauthorized", "NotFound", "allow", "forbid",
			audit.StageResponseComplete, audit.StagePanic,
			// damage
			"truncated", "too_large", "malformed", "over_bound",
		} {
			m[s] = types.String(s)
		}
		return m
	}()
)

func str(s string) ref.Val {
	if s == "" {
		return emptyVal
	}
	return types.String(s)
}

// interned returns a shared value for the common words of a small
// vocabulary, and boxes anything else.
func interned(s string) ref.Val {
	if v, ok := internedVals[s]; ok {
		return v
	}
	return str(s)
}

// decode decodes a raw JSON object variable, or null when absent.
func (a *activation) decode(name string, raw []byte) ref.Val {
	if len(raw) == 0 {
		return types.NullValue
	}
	a.decodes++
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		// A *types.Err makes every program that reads the variable
		// fail for this event, which Match counts.
		return types.NewErr("%s: %v", name, err)
	}
	return a.adapter.NativeToValue(v)
}

// program is one compiled CEL condition.
type program struct {
	prg cel.Program
	// usesRequestObject is read from the checked AST's references, so a
	// Set can tell its caller whether request or response bodies are
	// needed at all. (Evaluation decodes a body lazily either way: only a
	// program that reaches request_object or response_object makes the
	// activation decode it.)
	usesRequestObject bool
}

// compile checks that src is a bool expression over the rule variables and
// plans it for repeated evaluation.
func compile(env *cel.Env, src string) (*program, error) {
	ast, iss := env.Compile(src)
	if err := iss.Err(); err != nil {
		if strings.Contains(err.Error(), "reserved identifier: namespace") {
			return nil, fmt.Errorf("%v\n(the variable for objectRef.namespace is ns)", err)
		}
		return nil, err
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("expression has type %s, want bool", t)
	}
	p := &program{}
	for _, r := range ast.NativeRep().ReferenceMap() {
		if (r.Name == varDefs[vRequestObject].name || r.Name == varDefs[vResponseObject].name) && len(r.OverloadIDs) == 0 {
			p.usesRequestObject = true
		}
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, err
	}
	p.prg = prg
	return p, nil
}

// eval runs p over a. A runtime error, or a non-bool result that the checker
// could not rule out, reports an error and no match.
func (p *program) eval(a *activation) (bool, error) {
	out, _, err := p.prg.Eval(a)
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("result is %s, not bool", out.Type())
	}
	return bool(b), nil
}
