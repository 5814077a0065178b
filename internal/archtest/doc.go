// Package archtest holds tests of the project's structure: which packages
// may import what. It has no code of its own.
package archtest
