package enrich

import (
	"strings"
	"testing"
)

func TestUAClass(t *testing.T) {
	tests := []struct {
		ua   string
		want string
	}{
		// From third-party EKS audit samples: panther-labs/panther-analysis
		// @ daa10c8 (rules/aws_eks_rules/*.yml, rules/kubernetes_rules/
		// k8s_anonymous_api_access.yml, Tests: blocks) and splunk/
		// security_content @ b13b314 (data_sources/kubernetes_audit.yml).
		{"kubectl/v1.25.4 (darwin/arm64) kubernetes/872a965", UAKubectl},
		{"kubectl/v1.25.4", UAKubectl},
		{"kubectl/v1.27.2 (darwin/arm64) kubernetes/7f6f68f", UAKubectl},
		{"kubelet/v1.32.0 (linux/arm64) kubernetes/e105b10", UAClientLibrary},
		{"ELB-HealthChecker/2.0", UAHealthChecker},
		{"kube-probe/1.28", UAHealthChecker},
		{"Go-http-client/1.1", UAScripting},
		{"Go-http-client/2.0", UAScripting},
		{"python-requests/2.31.0", UAScripting},
		{"Custom-AsyncHttpClient", UAOther},

		// kubectl and client-go programs as they identify themselves.
		{"kubectl.exe/v1.29.2 (windows/amd64) kubernetes/4b8e819", UAKubectl},
		{"KUBECTL/v1.30.0 (linux/amd64) kubernetes/7c48c2b", UAKubectl},
		{"kube-controller-manager/v1.29.0 (linux/amd64) kubernetes/3f7a50f/system:serviceaccount:kube-system:generic-garbage-collector", UAClientLibrary},
		{"kube-scheduler/v1.30.2 (linux/arm64) kubernetes/39683505", UAClientLibrary},
		{"argocd-application-controller/v0.0.0 (linux/amd64) kubernetes/$Format", UAClientLibrary},
		{"OpenAPI-Generator/28.1.0/python", UAClientLibrary},
		{"Swagger-Codegen/12.0.1/python", UAClientLibrary},
		{"fabric8-kubernetes-client/6.9.2", UAClientLibrary},
		{"Helm/3.14.0", UAClientLibrary},

		// Command-line tools.
		{"curl/8.5.0", UACurlWget},
		{"curl/7.81.0", UACurlWget},
		{"Wget/1.21.2", UACurlWget},
		{"Wget", UAOther}, // no version: not the tool's real header
		{"HTTPie/3.2.2", UACurlWget},

		// Scripting libraries.
		{"Python-urllib/3.11", UAScripting},
		{"python-httpx/0.27.0", UAScripting},
		{"Python/3.11 aiohttp/3.9.1", UAScripting},
		{"pycurl/7.45.2 libcurl/7.88.1 OpenSSL/3.0.11", UAScripting},
		{"node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", UAScripting},
		{"axios/1.6.2", UAScripting},
		{"Java/17.0.2", UAScripting},
		{"Apache-HttpClient/4.5.13 (Java/17.0.2)", UAScripting},
		{"okhttp/4.12.0", UAScripting},
		{"libwww-perl/6.72", UAScripting},
		{"Ruby", UAScripting},
		{"Faraday v2.7.11", UAScripting},
		{"GuzzleHttp/7", UAScripting},
		{"Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.19041.3570", UAScripting},

		// Scanners: scanner tokens win, including over a Mozilla prefix.
		{"masscan/1.3 (https://github.com/robertdavidgraham/masscan)", UAScanner},
		{"Mozilla/5.0 zgrab/0.x", UAScanner},
		{"Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)", UAScanner},
		{"Nuclei - Open-source project (github.com/projectdiscovery/nuclei)", UAScanner},
		{"Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)", UAScanner},
		{"Mozilla/5.0 (compatible; InternetMeasurement/1.0; +https://internet-measurement.com/)", UAScanner},
		{"Expanse, a Palo Alto Networks company, searches across the global IPv4 space multiple times per day to identify customers' presences on the Internet.", UAScanner},
		{"Mozilla/5.0 (l9explore/1.2.2)", UAScanner},
		{"kube-hunter", UAScanner},
		{"kubescape/v3.0.3 (linux/amd64) kubernetes/v0.0.0", UAScanner},
		{"AWS Security Scanner", UAScanner},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 zgrab", UAScanner},
		{"python-requests/2.31.0 (shodan)", UAScanner},

		// Health checkers.
		{"GoogleHC/1.0", UAHealthChecker},
		{"Amazon-Route53-Health-Check-Service (ref 0b8c2d2c-6b4b-4f5c-9e2a-3b1d5d6f7a8b; report http://amzn.to/1vsZADi)", UAHealthChecker},
		{"Consul Health Check", UAHealthChecker},

		// Browsers.
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", UABrowser},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 14.2; rv:121.0) Gecko/20100101 Firefox/121.0", UABrowser},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1", UABrowser},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91", UABrowser},

		// Crawlers and bare Mozilla tokens are not browsers.
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", UAOther},
		{"Mozilla/5.0", UAOther},
		{"Mozilla/5.0 (compatible)", UAOther},

		// Nothing, or nothing known.
		{"", UANone},
		{"   ", UANone},
		{"-", UAOther},
		{"<!channel> <@U123> <https://evil.example|click here>", UAOther},
		{"\x00\xff\xfe", UAOther},
		{"Mozilla/5.0 (Windows NT 10.0) Chrome/120.0 " + strings.Repeat("A", 5000) + " zgrab", UABrowser}, // tokens past the scan limit are not read
	}
	for _, tt := range tests {
		if got := UAClass(tt.ua); got != tt.want {
			t.Errorf("UAClass(%.80q) = %q, want %q", tt.ua, got, tt.want)
		}
	}
}

func TestMostSuspicious(t *testing.T) {
	tests := []struct {
		classes []string
		want    string
	}{
		{nil, ""},
		{[]string{UAKubectl}, UAKubectl},
		{[]string{UAHealthChecker, UAKubectl}, UAKubectl},
		{[]string{UAKubectl, UAClientLibrary}, UAClientLibrary},
		{[]string{UAClientLibrary, UABrowser}, UABrowser},
		{[]string{UABrowser, UAOther}, UAOther},
		{[]string{UAOther, UACurlWget}, UACurlWget},
		{[]string{UACurlWget, UANone}, UANone},
		{[]string{UANone, UAScripting}, UAScripting},
		{[]string{UAScripting, UAScanner, UAKubectl}, UAScanner},
		{[]string{UAHealthChecker, "made-up"}, UAOther},
		{[]string{"made-up"}, UAOther},
		{[]string{"", UAHealthChecker}, UAOther},
	}
	for _, tt := range tests {
		if got := MostSuspicious(tt.classes...); got != tt.want {
			t.Errorf("MostSuspicious(%q) = %q, want %q", tt.classes, got, tt.want)
		}
	}
}

// TestRankingCoversEveryClass keeps the ranking and the class list in step.
func TestRankingCoversEveryClass(t *testing.T) {
	all := []string{UAScanner, UAScripting, UANone, UACurlWget, UAOther, UABrowser, UAClientLibrary, UAKubectl, UAHealthChecker}
	if len(suspicion) != len(all) {
		t.Fatalf("ranking has %d classes, want %d", len(suspicion), len(all))
	}
	for i, c := range all {
		if got := suspicion[c]; got != i {
			t.Errorf("rank of %q = %d, want %d", c, got, i)
		}
	}
}

func BenchmarkUAClass(b *testing.B) {
	uas := []string{
		"kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
		"python-requests/2.31.0",
		strings.Repeat("x", 100<<10),
	}
	for i := 0; b.Loop(); i++ {
		UAClass(uas[i%len(uas)])
	}
}
