package render

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anonwatch/anonwatch/internal/enrich"
	"github.com/anonwatch/anonwatch/internal/finding"
)

// view holds what every rendering shows of a finding, computed once. Its
// string fields are trusted: ASCII tokens, or canonical addresses, or text
// cleaned to one line. Untrusted values stay in the finding and are escaped
// by each rendering for its own syntax.
type view struct {
	f        *finding.Finding
	severity string // upper case, e.g. HIGH
	rule     string
	title    string // one line, from the rule file
	cluster  string
	logGroup string
	ip       string // canonical, or ""
	network  string // canonical CIDR of a network group, or ""
	ipClass  string
	uaClass  string
	id       string
	// sweep describes the sources of a sweep or network finding, e.g. "at
	// least 128 addresses", built from counts and the network only; ""
	// for any other finding. note says how they were counted, and tag
	// names the kind in a word.
	sweep, note, tag string
	// where is the cluster's account and region, "111122223333,
	// eu-west-1", as far as the finding names them; "" when it names
	// neither.
	where           string
	account, region string
}

const unknownCluster = "CLUSTER"

// named is the cluster as headlines name it: with its account when the
// finding names one, so that two accounts' prod are told apart before
// the message is opened.
func (v *view) named() string {
	if v.account == "" {
		return v.cluster
	}
	return v.cluster + " (" + v.account + ")"
}

// regionFlag is " --region REGION" for a command about the cluster, when
// the finding names its region.
func (v *view) regionFlag() string {
	if v.region == "" {
		return ""
	}
	return " --region " + v.region
}

// whereSuffix is the account and region for a line that names the cluster:
// " (111122223333, eu-west-1)", or "".
func (v *view) whereSuffix() string {
	if v.where == "" {
		return ""
	}
	return " (" + v.where + ")"
}

func newView(f *finding.Finding) view {
	v := view{
		f:        f,
		severity: severityWord(f.Severity),
		rule:     token(f.Rule, 64, idByte),
		cluster:  token(f.ClusterName, 100, nameByte),
		ip:       address(f.SrcIP),
		network:  network(f.SrcNet),
		id:       token(f.ID, 128, idByte),
	}
	if v.rule == "" {
		v.rule = "unknown-rule"
	}
	if v.cluster == "" {
		v.cluster = unknownCluster
	}
	if v.id == "" {
		v.id = "unknown"
	}
	v.account, v.region = token(f.Account, 32, idByte), token(f.Region, 32, idByte)
	var where []string
	for _, s := range []string{v.account, v.region} {
		if s != "" {
			where = append(where, s)
		}
	}
	v.where = strings.Join(where, ", ")
	v.title = line(f.Title, 120)
	if v.title == "" {
		v.title = v.rule
	}
	v.logGroup = token(f.LogGroup, 512, nameByte)
	if v.logGroup == "" || v.logGroup != f.LogGroup {
		v.logGroup = "/aws/eks/" + v.cluster + "/cluster"
	}
	v.ipClass = token(f.IPClass, 20, idByte)
	if v.ipClass == "" {
		v.ipClass = enrich.IPClass(v.ip)
	}
	if v.network != "" && v.ip == "" {
		// A network group: its addresses, counted, and the network.
		v.sweep, v.note, v.tag = "network "+v.network, networkNote, "network"
		if n, ok := f.Distinct["src_ip"]; ok {
			at := ""
			if slices.Contains(f.DistinctSaturated, "src_ip") {
				at = "at least "
			}
			word := "addresses"
			if n == 1 {
				word = "address"
			}
			v.sweep = fmt.Sprintf("%s%d %s in network %s", at, n, word, v.network)
		}
	}
	if d := f.Digest; d != nil {
		// A digest: the findings a rule's budget held back, summed up
		// from counts; no one source.
		v.ip, v.network = "", ""
		v.title = "Digest: " + v.title
		v.sweep = fmt.Sprintf("%d held %s", d.Held, plural(d.Held, "finding"))
		if n := f.Distinct["src_ip"]; n > 0 {
			v.sweep += " from " + counted(f, "src_ip", "address", "addresses") + " in " + counted(f, "src_net", "network", "networks")
		}
		v.note = fmt.Sprintf("past the %d findings of this rule on this cluster that go out one by one each %s; critical findings and rises in severity always do. Another digest follows at 2, 5, 10, 20, 50, … held; Source addresses and Source networks list a sample", d.Budget, v.window())
		v.tag = "digest"
	}
	if f.Sweep {
		v.ip = ""
		n, atLeast := f.SweepAddresses()
		at := ""
		if atLeast {
			at = "at least "
		}
		v.sweep = fmt.Sprintf("%s%d addresses", at, n)
		if n == 1 {
			v.sweep = at + "1 address"
		}
		v.note, v.tag = sweepNote, "sweep"
	}
	v.uaClass = token(f.UAClass, 20, idByte)
	if v.uaClass == "" {
		v.uaClass = uaClassOf(f)
	}
	return v
}

// uaClassOf classifies the finding's user agents when detect did not.
func uaClassOf(f *finding.Finding) string {
	if f.UserAgent != "" {
		return enrich.UAClass(f.UserAgent)
	}
	uas := f.Values["user_agent"]
	if len(uas) == 0 {
		return ""
	}
	classes := make([]string, 0, len(uas))
	for _, ua := range uas {
		classes = append(classes, enrich.UAClass(ua))
	}
	return enrich.MostSuspicious(classes...)
}

func severityWord(s string) string {
	w := strings.ToUpper(token(s, 10, func(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }))
	if strings.Trim(w, "_") == "" {
		return "UNKNOWN"
	}
	return w
}

func (v view) from() string {
	if v.sweep != "" {
		return v.sweep
	}
	if v.ip == "" {
		return "an unknown address"
	}
	return v.ip
}

func (v view) window() string { return line(v.f.Window, 32) }

// summary is the one-line account of a finding that every rendering leads
// with. It holds no value an attacker chose.
func (v view) summary() string {
	if d := v.f.Digest; d != nil {
		return fmt.Sprintf("%s: %s on %s: %s in the %s from %s UTC", v.severity, v.title, v.named(), v.sweep, v.window(), d.PeriodStart.UTC().Format("2006-01-02 15:04"))
	}
	class := ""
	if v.ip != "" || v.network != "" {
		class = " (" + v.ipClass + ")"
	}
	return fmt.Sprintf("%s: %s on %s from %s%s, %d %s in %s",
		v.severity, v.title, v.named(), v.from(), class, v.f.Count, plural(v.f.Count, "request"), v.window())
}

// countLabel names what a finding's Count counts: requests, or for a
// digest the findings it holds.
func (v view) countLabel() string {
	if v.f.Digest != nil {
		return "Held findings"
	}
	return "Requests"
}

// counted says how many distinct values of key f counts, "at least" when
// the count saturated.
func counted(f *finding.Finding, key, one, many string) string {
	n := f.Distinct[key]
	at := ""
	if slices.Contains(f.DistinctSaturated, key) {
		at = "at least "
	}
	w := many
	if n == 1 {
		w = one
	}
	return fmt.Sprintf("%s%d %s", at, n, w)
}

func plural(n int64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format(time.RFC3339)
}

// threadID is the same for every finding about one address on one cluster,
// so chat threads them together. It is a hash, so no sender-chosen text
// reaches it, and the cluster name cannot be confused with the address.
func (v view) threadID() string {
	h := sha256.Sum256([]byte(v.f.ClusterName + "\x00" + v.ip))
	return "anonwatch-" + hex.EncodeToString(h[:12])
}

// list is one field's collected values, as every rendering lists them.
type list struct {
	key   string
	label string
	// note qualifies the whole list, e.g. that its values are unverified.
	note   string
	values []string
	// distinct, when above zero, is the number of distinct values seen,
	// which can exceed the values kept.
	distinct  int
	saturated bool
}

// fieldLabels orders and names the fields that rules collect. Fields not
// named here follow in name order under their own names.
var fieldLabels = []struct{ key, label string }{
	{"damage", "Damaged lines (why, size)"},
	{"path", "Paths"},
	{"request_uri", "Request URIs"},
	{"user_agent", "User agents"},
	{"code", "Response codes"},
	{"verb", "Verbs"},
	{"resource", "Resources"},
	{"namespace", "Namespaces"},
	{"reason", "Reasons"},
	{"user", "Users"},
	{"groups", "Groups"},
	{"src_ip", "Source addresses"},
	{"src_net", "Source networks"},
	{"cluster_name", "Clusters"},
	{"audit_id", "Audit IDs (client-settable)"},
}

// maxLists bounds the lists shown, whatever the finding holds.
const maxLists = 24

// sweepNote explains a sweep finding's source wherever it is named.
const sweepNote = "counted together: the delivery held more sources than anonwatch counts one by one (it does so for the busiest), so the rest share one count; Source addresses lists a sample"

const networkNote = "counted together: one network's addresses are one source, so that rotating through them does not split the count; Source addresses lists a sample"

const unverifiedNote = "UNVERIFIED: sent by the client in X-Forwarded-For or X-Real-IP; anyone can claim any address there"

// lists returns the evidence lists of a finding in display order, with the
// forwarded-for claims last, apart from the rest.
func (v view) lists() (ls []list, dropped int) {
	f := v.f
	add := func(key, label string, values []string) {
		if len(values) == 0 {
			return
		}
		l := list{key: key, label: label, values: values}
		// Values the requests that raised the severity share with others
		// need telling apart; when they are all there is, they need not.
		if n := len(f.Evidence[key]); n > 0 && n < len(values) && key != "forwarded_for" {
			l.note = fmt.Sprintf("the first %d from the requests that raised the severity", n)
		}
		if d, ok := f.Distinct[key]; ok && d > 0 {
			l.distinct = d
			for _, s := range f.DistinctSaturated {
				if s == key {
					l.saturated = true
				}
			}
		}
		ls = append(ls, l)
	}
	known := map[string]bool{}
	for _, fl := range fieldLabels {
		known[fl.key] = true
		values := f.Values[fl.key]
		if fl.key == "user_agent" {
			values = userAgents(f)
		}
		add(fl.key, fl.label, values)
	}
	var other []string
	for k := range f.Values {
		if !known[k] {
			other = append(other, k)
		}
	}
	sort.Strings(other)
	for _, k := range other {
		add(k, "Field "+token(k, 40, idByte), f.Values[k])
	}
	if len(ls) > maxLists-1 {
		dropped = len(ls) - (maxLists - 1)
		ls = ls[:maxLists-1]
	}
	if len(f.ForwardedFor) > 0 {
		ls = append(ls, list{key: "forwarded_for", label: "Forwarded-for claims", note: unverifiedNote, values: f.ForwardedFor})
	}
	return ls, dropped
}

// userAgents merges the grouped user agent with the collected ones.
func userAgents(f *finding.Finding) []string {
	vs := f.Values["user_agent"]
	if f.UserAgent == "" {
		return vs
	}
	out := []string{f.UserAgent}
	for _, ua := range vs {
		if ua != f.UserAgent {
			out = append(out, ua)
		}
	}
	return out
}

// count describes how many values a list stands for.
func (l list) count() string {
	switch {
	case l.saturated:
		return fmt.Sprintf("at least %d distinct", l.distinct)
	case l.distinct > len(l.values):
		return fmt.Sprintf("%d distinct", l.distinct)
	}
	return fmt.Sprint(len(l.values))
}

// step is one thing to do about a finding: advice, and a command that
// carries it out or finds out more. Every rendering shows the same steps.
type step struct {
	text    string
	command string
}

// steps returns the next steps for a finding. The commands hold only the
// cluster name, log group and address, all reduced to characters that mean
// nothing to a shell or to Logs Insights, so they can be pasted as they are.
func (v view) steps() []step {
	s := []step{
		{
			text: "Check what the API server lets anonymous users do. EKS does not let you turn off --anonymous-auth, so RBAC decides: list every binding " +
				"that grants system:anonymous or system:unauthenticated, and remove any that is not meant to be public (the default system:public-info-viewer binding is expected)",
			command: `kubectl get clusterrolebindings,rolebindings -A -o json | jq -r '.items[] | select(any(.subjects[]?; .name == "system:anonymous" or .name == "system:unauthenticated")) | "\(.kind) \(.metadata.namespace // "-")/\(.metadata.name) roleRef=\(.roleRef.kind)/\(.roleRef.name)"'`,
		},
		{
			text: "Limit who can reach the public API endpoint to the ranges your people and CI use (replace ADMIN_CIDR; keep private access on so nodes still reach the API server)",
			command: "aws eks update-cluster-config --name " + v.cluster + v.regionFlag() +
				` --resources-vpc-config endpointPublicAccess=true,publicAccessCidrs="ADMIN_CIDR",endpointPrivateAccess=true`,
		},
	}
	if v.ip != "" {
		s = append(s, step{
			text:    "See everything this address sent: run this CloudWatch Logs Insights query on the log group " + v.logGroup + ". It matches the address only as the last sourceIPs entry, the one the client cannot forge",
			command: insightsQuery(v.ip),
		})
	}
	if succeeded(v.f.Values["code"]) {
		s = append(s, step{
			text: "Some requests succeeded (2xx). Review what they returned with the query above, and rotate any secret, token or credential they could have read",
		})
	}
	return s
}

// insightsQuery finds the audit events whose connection address is ip. It
// matches the raw line because Logs Insights flattens sourceIPs into
// numbered fields, and the connection address is the last of a varying
// number. The API server writes audit events as compact JSON and fills
// sourceIPs with parsed addresses only, so the pattern cannot be met by a
// forwarded-for claim.
func insightsQuery(ip string) string {
	return `fields @timestamp, verb, requestURI, userAgent, responseStatus.code | filter @message like /"sourceIPs":\[[^\]]*"` +
		regexp.QuoteMeta(ip) + `"\]/ | sort @timestamp desc | limit 200`
}

func succeeded(codes []string) bool {
	for _, c := range codes {
		if len(c) == 3 && c[0] == '2' {
			return true
		}
	}
	return false
}
