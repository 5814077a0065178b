package render

import "testing"

func BenchmarkSNS(b *testing.B) {
	for _, name := range []string{"pod-scan", "huge"} {
		f := loadFinding(b, name)
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := SNS(f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSlackBlocks(b *testing.B) {
	f := loadFinding(b, "cluster-scan-masscan")
	for b.Loop() {
		if _, err := SlackBlocks(f); err != nil {
			b.Fatal(err)
		}
	}
}
