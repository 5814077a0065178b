package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

func readEnvJSON(t *testing.T) map[string]map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "env.json"))
	if err != nil {
		t.Fatal(err)
	}
	// sam local passes every value as a string; a number or a nested
	// object here fails to decode, as it should.
	var env map[string]map[string]string
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("env.json: %v", err)
	}
	return env
}

// TestEnvJSONDeclared checks the rule that makes env.json silently useless
// when broken: `sam local invoke --env-vars` overrides only variables the
// function declares in template.yaml and ignores the rest.
func TestEnvJSONDeclared(t *testing.T) {
	l := load(t)
	env := readEnvJSON(t)
	if len(env) == 0 {
		t.Fatal("env.json is empty")
	}
	for fn, vars := range env {
		r := asMap(asMap(l.raw["Resources"])[fn])
		if r["Type"] != "AWS::Serverless::Function" {
			t.Errorf("env.json sets variables for %q, which is no function in template.yaml", fn)
			continue
		}
		declared := asMap(asMap(asMap(r["Properties"])["Environment"])["Variables"])
		for name := range vars {
			if _, ok := declared[name]; !ok {
				t.Errorf("env.json sets %s for %s, which template.yaml does not declare; sam local would ignore it", name, fn)
			}
		}
	}
}

// goawsConfig is the part of scripts/goaws.yaml that names the local
// findings topic.
type goawsConfig struct {
	Local struct {
		Port      string `json:"Port"`
		Region    string `json:"Region"`
		AccountID string `json:"AccountId"`
		Topics    []struct {
			Name string `json:"Name"`
		} `json:"Topics"`
	} `json:"Local"`
}

// TestEnvJSONDetector checks that env.json gives the detector everything it
// needs locally and points it at the emulators the scripts start: dynalite
// on its default port 4567 (scripts/dynalite.sh) and the topic that
// scripts/goaws.yaml creates. sam local runs the function in Docker, so the
// host is host.docker.internal, not 127.0.0.1.
func TestEnvJSONDetector(t *testing.T) {
	vars := readEnvJSON(t)["DetectorFunction"]
	var keys []string
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SNS", EnvTableName, EnvTopicARN}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("DetectorFunction variables in env.json (-want +got):\n%s", diff)
	}

	b, err := os.ReadFile(filepath.Join(root, "scripts", "goaws.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var g goawsConfig
	if err := yaml.Unmarshal(b, &g); err != nil {
		t.Fatalf("scripts/goaws.yaml: %v", err)
	}
	if len(g.Local.Topics) == 0 {
		t.Fatal("scripts/goaws.yaml declares no topic")
	}
	wantTopic := fmt.Sprintf("arn:aws:sns:%s:%s:%s", g.Local.Region, g.Local.AccountID, g.Local.Topics[0].Name)
	if got := vars[EnvTopicARN]; got != wantTopic {
		t.Errorf("env.json TOPIC_ARN = %q, want the topic scripts/goaws.yaml creates, %q", got, wantTopic)
	}

	for _, tt := range []struct{ name, port string }{
		{"AWS_ENDPOINT_URL_DYNAMODB", "4567"},
		{"AWS_ENDPOINT_URL_SNS", g.Local.Port},
	} {
		u, err := url.Parse(vars[tt.name])
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if u.Scheme != "http" || u.Hostname() != "host.docker.internal" || u.Port() != tt.port || (u.Path != "" && u.Path != "/") {
			t.Errorf("%s = %q, want http://host.docker.internal:%s", tt.name, vars[tt.name], tt.port)
		}
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`).MatchString(vars[EnvTableName]) {
		t.Errorf("TABLE_NAME %q is not a DynamoDB table name", vars[EnvTableName])
	}
}

// readTOML reads the subset of TOML samconfig.toml uses: [table] headers
// and key = value lines whose value is a basic string, a boolean or a
// number. It returns values by "table.key" ("version" for top-level keys),
// strings unquoted, and fails on any other syntax rather than guess.
func readTOML(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	header := regexp.MustCompile(`^\[([A-Za-z0-9_.]+)\]$`)
	kv := regexp.MustCompile(`^([A-Za-z0-9_]+)\s*=\s*("(?:[^"\\]|\\.)*"|true|false|[0-9.]+)$`)
	out := map[string]string{}
	table := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case header.MatchString(line):
			table = header.FindStringSubmatch(line)[1] + "."
		case kv.MatchString(line):
			m := kv.FindStringSubmatch(line)
			v := m[2]
			if strings.HasPrefix(v, `"`) {
				if err := json.Unmarshal([]byte(v), &v); err != nil {
					t.Fatalf("%s:%d: %v", path, n, err)
				}
			}
			if _, dup := out[table+m[1]]; dup {
				t.Fatalf("%s:%d: %s set twice", path, n, table+m[1])
			}
			out[table+m[1]] = v
		default:
			t.Fatalf("%s:%d: %q is not TOML this test reads", path, n, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSamconfig checks the settings docs/deploy.md relies on. Keys that
// `sam deploy --guided` adds (region, parameter_overrides) are allowed.
func TestSamconfig(t *testing.T) {
	cfg := readTOML(t, filepath.Join(root, "samconfig.toml"))
	want := map[string]string{
		"version":                                     "0.1",
		"default.global.parameters.stack_name":        "anonwatch",
		"default.build.parameters.build_in_source":    "true",
		"default.build.parameters.parallel":           "true",
		"default.deploy.parameters.capabilities":      "CAPABILITY_IAM",
		"default.deploy.parameters.resolve_s3":        "true",
		"default.deploy.parameters.confirm_changeset": "true",
		"default.local_invoke.parameters.env_vars":    "env.json",
	}
	got := map[string]string{}
	for k := range want {
		if v, ok := cfg[k]; ok {
			got[k] = v
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("samconfig.toml (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(root, cfg["default.local_invoke.parameters.env_vars"])); err != nil {
		t.Errorf("samconfig.toml names an env_vars file that is missing: %v", err)
	}
}

func TestReadTOML(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.toml")
	src := "version = 0.1\n# comment\n\n[a.b]\ns = \"x \\\"y\\\"\"\nflag = true\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"version": "0.1", "a.b.s": `x "y"`, "a.b.flag": "true"}
	if diff := cmp.Diff(want, readTOML(t, path)); diff != "" {
		t.Errorf("readTOML (-want +got):\n%s", diff)
	}
}
