package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/anonwatch/anonwatch/internal/audit"
)

// fields lists every Field in the order documentation prints them.
var fields = []Field{
	FieldSrcIP, FieldSrcNet, FieldClusterName, FieldUser, FieldGroups, FieldUserAgent,
	FieldPath, FieldRequestURI, FieldVerb, FieldCode, FieldReason,
	FieldResource, FieldNamespace, FieldName, FieldDecisionReason,
	FieldAuditID, FieldDamage,
}

// Fields returns every field a rule may name, in a stable order.
func Fields() []Field { return slices.Clone(fields) }

// ParseField returns the Field called name, as a rule file spells it.
func ParseField(name string) (Field, error) {
	f := Field(name)
	if slices.Contains(fields, f) {
		return f, nil
	}
	return "", fmt.Errorf("unknown field %q", name)
}

// Groupable reports whether a rule may group by f. detect.Group holds
// exactly these fields, so grouping by another one could not be stored.
func (f Field) Groupable() bool {
	switch f {
	case FieldSrcIP, FieldSrcNet, FieldClusterName, FieldUser, FieldGroups, FieldUserAgent:
		return true
	}
	return false
}

// Value returns f's value for ev in cluster, as findings group, count and
// display it: groups sorted and joined with ",", code in decimal or "" when
// the event has none, src_ip the connection's address or "" when invalid.
// src_net is masked to DefaultNetwork; Rule.Value masks it to the rule's.
// An unknown field yields "".
func (f Field) Value(ev *audit.Event, cluster string) string {
	switch f {
	case FieldSrcIP:
		return ev.SrcIP()
	case FieldSrcNet:
		return DefaultNetwork.Of(ev.SrcIP())
	case FieldClusterName:
		return cluster
	case FieldUser:
		return ev.User.Username
	case FieldGroups:
		return joinSorted(ev.User.Groups)
	case FieldUserAgent:
		return ev.UserAgent
	case FieldPath:
		return ev.Path()
	case FieldRequestURI:
		return ev.RequestURI
	case FieldVerb:
		return ev.Verb
	case FieldCode:
		if ev.ResponseCode == 0 {
			return ""
		}
		if c := ev.ResponseCode; c > 0 && c < len(codeStrings) {
			return codeStrings[c]
		}
		return strconv.Itoa(ev.ResponseCode)
	case FieldReason:
		return ev.ResponseReason
	case FieldResource:
		return ev.ObjectRef.Resource
	case FieldNamespace:
		return ev.ObjectRef.Namespace
	case FieldName:
		return ev.ObjectRef.Name
	case FieldDecisionReason:
		return ev.DecisionReason
	case FieldAuditID:
		return ev.AuditID
	case FieldDamage:
		if ev.Damage == "" {
			return ""
		}
		return ev.Damage + ", " + strconv.Itoa(ev.LineSize) + " bytes"
	}
	return ""
}

// codeStrings spells the HTTP status codes once: a request's code is
// collected by every rule it matches, and it would otherwise cost an
// allocation each time.
var codeStrings = func() (c [600]string) {
	for i := range c {
		c[i] = strconv.Itoa(i)
	}
	return c
}()

// joinSorted sorts a copy, so the event the caller holds keeps the order the
// API server logged.
func joinSorted(groups []string) string {
	switch len(groups) {
	case 0:
		return ""
	case 1:
		return groups[0]
	}
	s := slices.Clone(groups)
	slices.Sort(s)
	return strings.Join(s, ",")
}
