package filterpattern_test

import (
	"fmt"

	"github.com/anonwatch/anonwatch/internal/filterpattern"
)

func ExampleParse() {
	p, err := filterpattern.Parse(`{ $.user.username = "system:anonymous" || $.user.groups[0] = "system:unauthenticated" }`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Match([]byte(`{"user":{"username":"system:anonymous","groups":["system:unauthenticated"]}}`)))
	fmt.Println(p.Match([]byte(`{"user":{"username":"alice","groups":["system:authenticated"]}}`)))
	fmt.Println(p.Match([]byte(`not JSON`)))
	// Output:
	// true
	// false
	// false
}

func ExampleParse_text() {
	p, err := filterpattern.Parse(`?"[Truncated...]" ?"system:anonymous"`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Terms())
	fmt.Println(p.Match([]byte(`{"kind":"Event","user":{"username":"system:anonymous"}}`)))
	fmt.Println(p.Match([]byte(`{"kind":"Event","requestURI":"/api/v1/namespaces/def[Truncated...]`)))
	fmt.Println(p.Match([]byte(`{"kind":"Event","user":{"username":"System:Anonymous"}}`)))
	// Output:
	// [?"[Truncated...]" ?"system:anonymous"]
	// true
	// true
	// false
}
