// Command project uses every small fixture module; the end-to-end tests
// download and build it through a proxy.
package main

import (
	"fmt"

	mod "example.com/Upper/Mod"
	"example.com/incompat"
	"example.com/lib"
	"example.com/major/v2"
	"example.com/nogomod"
	"example.com/pseudo"
)

func main() {
	fmt.Println(mod.Name())
	fmt.Println("incompat major", incompat.Major())
	fmt.Println("lib", lib.Version())
	fmt.Println(major.Greeting("project"))
	fmt.Println("nogomod", nogomod.Answer())
	fmt.Println("pseudo", pseudo.Commit())
}
