package enrich_test

import (
	"fmt"

	"github.com/anonwatch/anonwatch/internal/enrich"
)

func ExampleIPClass() {
	fmt.Println(enrich.IPClass("10.0.27.115"))
	fmt.Println(enrich.IPClass("::ffff:100.64.1.2"))
	fmt.Println(enrich.IPClass("176.95.188.101"))
	fmt.Println(enrich.IPClass("unknown"))
	// Output:
	// private
	// cgnat
	// public
	// invalid
}

func ExampleUAClass() {
	fmt.Println(enrich.UAClass("Mozilla/5.0 zgrab/0.x"))
	fmt.Println(enrich.UAClass("kubectl/v1.29.2 (linux/amd64) kubernetes/4b8e819"))
	fmt.Println(enrich.UAClass(""))
	// Output:
	// scanner
	// kubectl
	// none
}

func ExampleMostSuspicious() {
	fmt.Println(enrich.MostSuspicious("kubectl", "curl-wget", "health-checker"))
	// Output: curl-wget
}
