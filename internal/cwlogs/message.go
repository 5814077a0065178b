package cwlogs

import (
	"errors"

	"github.com/anonwatch/anonwatch/internal/jsonscan"
)

// message decodes a JSON string into bytes for encoding/json, in decodeStd.
// The result is what encoding/json decodes the same string to: escapes
// resolved, each byte of invalid UTF-8 and each unpaired surrogate replaced
// by U+FFFD.
type message []byte

var errNotString = errors.New("message is not a string")

// UnmarshalJSON is called by encoding/json with a literal its scanner has
// already validated. As for a string field, null leaves the message as it
// is and any other kind of value is an error.
func (m *message) UnmarshalJSON(lit []byte) error {
	if string(lit) == "null" {
		return nil
	}
	if lit[0] != '"' {
		return errNotString
	}
	s := lit[1 : len(lit)-1]
	u := jsonscan.AppendUnescaped(make([]byte, 0, len(s)), s)
	*m = u[:len(u):len(u)]
	return nil
}
