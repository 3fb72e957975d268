package cli

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// The two table paths print the same bytes, so a 10,000-host listing looks
// exactly like a 10-host one.
func TestWriteTablePathsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"", "db1", "127.0.1.11", "ipmi,redfish", "a-much-longer-host-name-07", "[fd00::11]:623", "site=ams,rack=r12", "x"}
	for n := 0; n < 200; n++ {
		cols := 1 + r.IntN(7)
		header := make([]string, cols)
		for i := range header {
			header[i] = fmt.Sprintf("col%d", i)
		}
		rows := make([][]string, r.IntN(20))
		for i := range rows {
			rows[i] = make([]string, cols)
			for j := range rows[i] {
				rows[i][j] = words[r.IntN(len(words))]
			}
		}
		hdr := make([]string, cols)
		for i, h := range header {
			hdr[i] = strings.ToUpper(h)
		}
		cells := make([][]string, len(rows))
		for i, row := range rows {
			cells[i] = make([]string, cols)
			for j, c := range row {
				if c == "" {
					c = "-"
				}
				cells[i][j] = c
			}
		}
		var a, b bytes.Buffer
		if err := writeTablewriter(&a, hdr, cells); err != nil {
			t.Fatal(err)
		}
		if err := writeTabwriter(&b, hdr, cells); err != nil {
			t.Fatal(err)
		}
		if a.String() != b.String() {
			t.Fatalf("table %d differs:\ntablewriter:\n%s\ntabwriter:\n%s", n, a.String(), b.String())
		}
	}
}

func BenchmarkWriteTable10k(b *testing.B) {
	var rows [][]string
	for i := 0; i < 10000; i++ {
		rows = append(rows, []string{fmt.Sprintf("host%05d", i), fmt.Sprintf("10.0.%d.%d", i/256, i%256), "ipmi,redfish", "prod", "db,ams", "rack=r12,site=ams"})
	}
	for i := 0; i < b.N; i++ {
		var buf bytes.Buffer
		if err := writeTable(&buf, []string{"a", "b", "c", "d", "e", "f"}, rows); err != nil {
			b.Fatal(err)
		}
	}
}
