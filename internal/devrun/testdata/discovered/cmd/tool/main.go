// Command tool is a main package that does not import svckit: discovery leaves it out.
package main

import "fmt"

func main() { fmt.Println("not a service") }
