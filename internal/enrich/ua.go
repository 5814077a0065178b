package enrich

import "strings"

// User-agent classes returned by UAClass.
const (
	UAScanner       = "scanner"        // internet-wide scanners and attack tools
	UAScripting     = "scripting"      // general-purpose HTTP libraries
	UANone          = "none"           // no User-Agent header at all
	UACurlWget      = "curl-wget"      // command-line HTTP tools
	UAOther         = "other"          // anything not recognised
	UABrowser       = "browser"        // a web browser
	UAClientLibrary = "client-library" // Kubernetes clients other than kubectl
	UAKubectl       = "kubectl"
	UAHealthChecker = "health-checker" // load balancer and uptime probes
)

// uaScanLimit bounds the bytes of a user agent that UAClass reads. A user
// agent is chosen by the client, and can be huge; a real one fits easily.
const uaScanLimit = 1024

// Token lists, all lower case, matched as substrings. Order of the checks in
// UAClass, not of the lists, decides ties.
var (
	// scannerTokens name scanners and attack tools. They are checked first:
	// zgrab sends "Mozilla/5.0 zgrab/0.x" and Censys "Mozilla/5.0
	// (compatible; CensysInspect/1.1; ...)", which must not read as browsers.
	// kubescape is a posture scanner an owner runs with credentials; seen
	// anonymously it is someone else's scan, so it is a scanner here too.
	scannerTokens = []string{
		"masscan", "zgrab", "nmap", "nuclei", "projectdiscovery",
		"kube-hunter", "kubehunter", "kubescape", "censys", "shodan",
		"security scanner", "expanse", "xpanse", "paloaltonetworks",
		"palo alto networks", "internet-measurement", "internetmeasurement",
		"leakix", "l9explore", "l9tcpid", "zmeu", "sqlmap", "nikto",
		"nessus", "openvas", "qualys", "acunetix", "wpscan", "gobuster",
		"dirbuster", "feroxbuster", "fuzz faster u fool", "ffuf/", "whatweb",
		"binaryedge", "onyphe", "stretchoid", "netcraft", "criminalip",
		"scanner", "scanning", "researchscan", "zoomeye",
	}
	healthTokens = []string{
		"kube-probe/", "elb-healthchecker", "googlehc/",
		"route53-health-check", "route 53 health check", "healthcheck",
		"health-check", "health check", "blackbox exporter", "uptimerobot",
		"pingdom", "statuscake",
	}
	// clientLibTokens name Kubernetes clients. client-go's default user
	// agent is "<binary>/<version> (<os>/<arch>) kubernetes/<commit>", so
	// ") kubernetes/" covers every client-go program that kept it
	// (kube-controller-manager, kubelet, operators). Go-http-client is
	// net/http's default and says nothing about Kubernetes.
	clientLibTokens = []string{
		") kubernetes/", "client-go", "openapi-generator/", "swagger-codegen/",
		"kubernetes-client", "kubernetes/client-", "kubernetes java client",
		"fabric8", "kubernetesclient", "helm/", "kopf/",
	}
	scriptingTokens = []string{
		"python-requests", "python-urllib", "python-httpx", "python/",
		"aiohttp", "httplib2", "urllib3", "pycurl", "go-http-client",
		"node-fetch", "axios", "undici", "node.js", "got (", "java/",
		"java-http-client", "apache-httpclient", "okhttp", "libwww-perl",
		"lwp::", "perl", "ruby", "faraday", "httparty", "php", "guzzlehttp",
		"dart/", "deno/", "powershell", "reqwest", "hyper/", "fasthttp",
		"postmanruntime", "insomnia", "rest-client",
	}
	curlTokens    = []string{"curl/", "wget/", "httpie/", "xh/", "aria2/"}
	botTokens     = []string{"bot/", "bot;", "crawler", "spider"}
	browserTokens = []string{
		"chrome/", "firefox/", "safari/", "edg/", "opr/", "gecko/",
		"msie ", "trident/", "vivaldi/",
	}
)

// UAClass returns the class of a user agent: one of the UA* constants.
//
// Matching is by case-insensitive substring over the first uaScanLimit bytes,
// without regular expressions, so a long hostile header costs little. When a
// user agent carries tokens of several classes, scanner tokens win over all
// others, then health checkers, kubectl, Kubernetes client libraries,
// scripting libraries, command-line tools, crawlers and browsers, in that
// order. An empty user agent is "none", which is a signal of its own:
// hand-written tools often send no header at all.
func UAClass(ua string) string {
	ua = strings.TrimSpace(ua)
	if ua == "" {
		return UANone
	}
	if len(ua) > uaScanLimit {
		ua = ua[:uaScanLimit]
	}
	l := lowerASCII(ua)
	switch {
	case containsAny(l, scannerTokens):
		return UAScanner
	case containsAny(l, healthTokens):
		return UAHealthChecker
	case strings.HasPrefix(l, "kubectl/") || strings.HasPrefix(l, "kubectl.exe/"):
		return UAKubectl
	case containsAny(l, clientLibTokens):
		return UAClientLibrary
	case containsAny(l, scriptingTokens):
		return UAScripting
	case containsAny(l, curlTokens):
		return UACurlWget
	case containsAny(l, botTokens):
		return UAOther
	case (strings.HasPrefix(l, "mozilla/") || strings.HasPrefix(l, "opera/")) && containsAny(l, browserTokens):
		return UABrowser
	}
	return UAOther
}

// suspicion ranks classes for MostSuspicious, most suspicious first.
var suspicion = map[string]int{
	UAScanner:       0,
	UAScripting:     1,
	UANone:          2,
	UACurlWget:      3,
	UAOther:         4,
	UABrowser:       5,
	UAClientLibrary: 6,
	UAKubectl:       7,
	UAHealthChecker: 8,
}

// MostSuspicious returns the class that best describes a finding that covers
// several user agents: the first, in the order scanner, scripting, none,
// curl-wget, other, browser, client-library, kubectl, health-checker.
//
// The order follows how much a class says about intent. Scanners announce
// it. Scripting libraries and missing headers mean automation written for
// the purpose. curl and wget are a person trying things by hand. Unknown
// agents say nothing either way. A browser against the API is odd but rarely
// hostile, and Kubernetes clients and health checkers are what a cluster
// normally sees. A value that is not a known class counts as "other". With
// no classes it returns "".
func MostSuspicious(classes ...string) string {
	best, bestRank := "", len(suspicion)
	for _, c := range classes {
		r, ok := suspicion[c]
		if !ok {
			c, r = UAOther, suspicion[UAOther]
		}
		if r < bestRank {
			best, bestRank = c, r
		}
	}
	return best
}

func containsAny(s string, tokens []string) bool {
	for _, t := range tokens {
		if strings.Contains(s, t) {
			return true
		}
	}
	return false
}

// lowerASCII lowers ASCII letters only. Tokens are ASCII, and leaving other
// bytes alone keeps offsets and cost predictable for any input.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
