package rmcp

import "testing"

func TestWindow(t *testing.T) {
	type step struct {
		seq  uint32
		want bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"zero never", []step{{0, false}, {1, true}, {0, false}}},
		{"in order", []step{{1, true}, {2, true}, {3, true}}},
		{"replay refused", []step{{5, true}, {5, false}, {6, true}, {5, false}}},
		{"reordered within the window", []step{{10, true}, {8, true}, {9, true}, {8, false}, {11, true}}},
		{"too old", []step{{100, true}, {84, false}, {85, true}}},
		{"gap ahead", []step{{1, true}, {500, true}, {499, true}, {2, false}}},
		{"too far ahead", []step{{1, true}, {1 + aheadLimit + 1, false}, {1 + aheadLimit, true}}},
		{"first packet any number", []step{{4000, true}, {4001, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w window
			for i, s := range tc.steps {
				got := w.check(s.seq)
				if got != s.want {
					t.Fatalf("step %d: check(%d) = %v, want %v", i, s.seq, got, s.want)
				}
				if got {
					w.accept(s.seq)
				}
			}
		})
	}
}
