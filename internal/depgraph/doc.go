// Package depgraph holds the build's dependency rules as a test: what each Lambda and the
// CDK app may link. It has no code; `go test ./internal/depgraph` fails the build when a
// function gains a forbidden import.
package depgraph
