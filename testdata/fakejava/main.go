// Command fakejava is the fake scoring service tests install under the name
// "java"; see package fakescorer.
package main

import (
	"os"

	"github.com/steam-overseer/steam-overseer/demo/fakescorer"
)

func main() { os.Exit(fakescorer.Main(os.Args[1:])) }
