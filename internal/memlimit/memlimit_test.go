package memlimit

import "testing"

func TestFor(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want int64
		ok   bool
	}{
		{name: "128 MB", env: map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"}, want: 72 << 20, ok: true},
		{name: "1024 MB", env: map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}, want: 576 << 20, ok: true},
		{name: "GOMEMLIMIT wins", env: map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "GOMEMLIMIT": "100MiB"}},
		{name: "outside Lambda", env: map[string]string{}},
		{name: "not a size", env: map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128MB"}},
		{name: "zero", env: map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "0"}},
		{name: "absurd", env: map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "9223372036854775807"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := For(func(k string) string { return tt.env[k] })
			if got != tt.want || ok != tt.ok {
				t.Errorf("For = %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
