package render

// Copies of detect's caps, for caps_test.go, which imports detect.
const (
	DetectValues   = detectValues
	DetectValueLen = detectValueLen
)
