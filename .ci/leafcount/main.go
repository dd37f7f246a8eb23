// Command leafcount reads `go test -json` and prints how many leaf tests
// passed: tests and subtests that have no subtests of their own. A failing
// leaf makes it exit 1, so a count is never taken from a broken run.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

func main() {
	passed := map[string]bool{}
	failed := 0
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev struct{ Action, Package, Test string }
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Test == "" {
			continue
		}
		key := ev.Package + " " + ev.Test
		switch ev.Action {
		case "pass":
			passed[key] = true
		case "fail":
			failed++
		}
	}
	leaves := 0
	for k := range passed {
		parent := false
		for o := range passed {
			if strings.HasPrefix(o, k+"/") {
				parent = true
				break
			}
		}
		if !parent {
			leaves++
		}
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "leafcount: %d tests failed\n", failed)
		os.Exit(1)
	}
	fmt.Println(leaves)
}
