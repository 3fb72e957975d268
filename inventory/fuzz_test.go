package inventory

import (
	"fmt"
	"os"
	"testing"
)

// fuzzSeeds are inventories that reach most of the validator.
func fuzzSeeds(f *testing.F) {
	if data, err := os.ReadFile("../inventory.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(selectInventory))
	f.Add([]byte(header + "  - name: db1\n    bmc: 10.0.5.11\n    groups: [db]\n    labels: {rack: r1}\n    protocols: [redfish, ipmi]\n    ipmi: {port: 623, cipher_suite: 3}\n    redfish: {port: 443, fingerprint: \"sha256:3F:A1\", insecure: false}\n    expect: {guid: x, power: on}\n    sim: {vendor: dell, scenario: [panicked], delay: 3s}\n"))
	f.Add([]byte(header + "  - name: web[01-20]\n    bmc: 127.0.2.[1-20]\n  - name: v6\n    bmc: \"[fd00::1]:623\"\n"))
	f.Add([]byte("version: 1\ndefaults: &d {credentials: c}\ngroups:\n  g: *d\nhosts:\n- name: 'a'\n  bmc: \"10.0.0.1\"\n  labels:\n    k: v # c\n"))
	f.Add([]byte("version: 1\n---\n- [a, {b: c}]\n"))
}

// FuzzParse checks that no input makes the loader panic, and that what it
// returns is consistent: an inventory only without errors, problems with a
// message and a sane line, every host with a valid name and IP address.
func FuzzParse(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := lineCount(data)
		inv, probs := Parse("fuzz.yaml", data)
		for _, p := range probs {
			if p.Msg == "" || p.Line < 0 || p.Line > lines {
				t.Fatalf("bad problem %+v (input has %d lines)", p, lines)
			}
		}
		if HasErrors(probs) != (inv == nil) {
			t.Fatalf("inventory %v with problems %v", inv != nil, problemStrings(probs))
		}
		_ = Check("fuzz.yaml", data)
		if inv == nil {
			return
		}
		for _, h := range inv.Hosts {
			if !validName(h.Name) || !h.Addr.IsValid() || h.Addr.Zone() != "" || len(h.Protocols) == 0 || inv.Credentials[h.Credentials] == nil {
				t.Fatalf("bad host %+v", *h)
			}
			if got, ok := inv.Host(h.Name); !ok || got != h {
				t.Fatalf("Host(%q) does not find it", h.Name)
			}
		}
		_ = inv.Lint()
		_, _ = inv.Select("all")
	})
}

// FuzzFastParse is the differential test that lets the fast parser stand
// in for yaml.v3: whenever it accepts an input, yaml.v3 must accept it too
// and build the same tree.
func FuzzFastParse(f *testing.F) {
	fuzzSeeds(f)
	f.Add([]byte("a:\nb:\n  - c\n  - d: e\n    f: [g, 'h''i', \"j\"]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok, _ := fastParse(data)
		if !ok {
			return
		}
		slow, err := decodeYAML(data)
		if err != nil {
			t.Fatalf("fast parser accepted what yaml.v3 rejects (%v)", err)
		}
		if d := nodeDiff(fast, slow, "doc"); d != "" {
			t.Fatalf("trees differ: %s", d)
		}
	})
}

func nodeDiff(a, b *node, path string) string {
	if a == nil || b == nil {
		if a != b {
			return fmt.Sprintf("%s: fast %v, yaml.v3 %v", path, a, b)
		}
		return ""
	}
	if a.kind != b.kind || a.str != b.str || a.flow != b.flow || a.tagged != b.tagged || a.value != b.value || a.line != b.line || a.col != b.col || len(a.content) != len(b.content) {
		return fmt.Sprintf("%s: fast %+v, yaml.v3 %+v", path, *a, *b)
	}
	for i := range a.content {
		if d := nodeDiff(a.content[i], b.content[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
			return d
		}
	}
	return ""
}

// FuzzSelect checks that no selector makes Select panic and that results
// are in inventory order without duplicates.
func FuzzSelect(f *testing.F) {
	inv, probs := Parse("inv.yaml", []byte(selectInventory))
	if inv == nil {
		f.Fatal(problemStrings(probs))
	}
	for _, s := range []string{"all", "db1,web[01-02]", "@db,!db3", "site=ams,-web*", "rack!=r1", "db[1-3,12]", "!@web", "db[*", "a=b=c", "!!x", "[1-2]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sel string) {
		hs, err := inv.Select(sel)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		last := -1
		for _, h := range hs {
			if h.index <= last {
				t.Fatalf("%q: out of order or duplicated: %v", sel, names(hs))
			}
			last = h.index
		}
	})
}
