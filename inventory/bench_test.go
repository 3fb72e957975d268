package inventory

import (
	"fmt"
	"strings"
	"testing"
)

// bigInventory is n explicit host entries (no ranges), the shape of a large
// hand-kept fleet.
func bigInventory(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\ndefaults:\n  credentials: prod\ncredentials:\n  prod: {user: admin, password_env: RMM_PROD_PASSWORD}\ngroups:\n")
	for g := 0; g < 20; g++ {
		fmt.Fprintf(&b, "  g%02d: {description: \"group %d\", labels: {role: r%d}}\n", g, g, g)
	}
	b.WriteString("  ams: {labels: {site: ams}}\n  fra: {labels: {site: fra}}\nhosts:\n")
	for i := 0; i < n; i++ {
		site := "ams"
		if i%2 == 1 {
			site = "fra"
		}
		fmt.Fprintf(&b, "  - name: node%05d\n    bmc: 10.%d.%d.%d\n    groups: [g%02d, %s]\n    labels: {rack: r%03d}\n", i, 1+i>>16, (i>>8)&255, i&255, i%20, site, i%400)
	}
	return []byte(b.String())
}

// BenchmarkParseTenThousand measures loading 10,000 hosts: the YAML step
// alone with each parser, and the whole Parse (fast parser + validation).
func BenchmarkParseTenThousand(b *testing.B) {
	data := bigInventory(10000)
	if _, ok, _ := fastParse(data); !ok {
		b.Fatal("benchmark inventory is outside the fast subset")
	}
	b.Run("yaml=fast", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			fastParse(data)
		}
	})
	b.Run("yaml=yaml.v3", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := decodeYAML(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, slow := range []bool{false, true} {
		name := "parse=fast"
		if slow {
			name = "parse=yaml.v3"
		}
		b.Run(name, func(b *testing.B) {
			yamlV3Only = slow
			defer func() { yamlV3Only = false }()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if inv, probs := Parse("big.yaml", data); inv == nil {
					b.Fatal(problemStrings(probs))
				}
			}
		})
	}
}

func BenchmarkSelect(b *testing.B) {
	inv, _ := Parse("big.yaml", bigInventory(10000))
	for _, sel := range []string{"all", "@g03,!rack=r001", "node0[1000-1999]", "node01*"} {
		b.Run(sel, func(b *testing.B) {
			for b.Loop() {
				if _, err := inv.Select(sel); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
