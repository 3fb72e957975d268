package inventory

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// header is a valid start of an inventory: 9 lines, so the first host
// entry added after it is on line 10.
const header = `version: 1
defaults:
  credentials: prod
credentials:
  prod: {user: admin, password_env: RMM_PROD_PASSWORD}
groups:
  db: {}
  web: {}
hosts:
`

func problemStrings(probs []Problem) []string {
	out := make([]string, len(probs))
	for i, p := range probs {
		out[i] = p.String()
	}
	return out
}

func TestParseDemoInventory(t *testing.T) {
	data, err := os.ReadFile("../inventory.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := fastParse(data); !ok {
		t.Error("the demo inventory is not in the fast parser's subset; loading it falls back to yaml.v3")
	}
	inv, probs := Parse("inventory.yaml", data)
	if inv == nil {
		t.Fatalf("demo inventory invalid:\n%s", strings.Join(problemStrings(probs), "\n"))
	}
	if n := len(inv.Hosts); n < 30 || n > 40 {
		t.Errorf("demo has %d hosts, want 30-40", n)
	}
	sites := map[string]int{}
	vendors := map[string]bool{}
	scenarios := map[string]bool{}
	for _, h := range inv.Hosts {
		sites[h.Labels["site"]]++
		if contains(h.Protocols, ProtocolRedfish) {
			vendors[h.Sim.Vendor] = true
		}
		for _, s := range h.Sim.Scenarios {
			scenarios[s] = true
		}
		want := map[string]string{"ams": "127.0.1.", "fra": "127.0.2."}[h.Labels["site"]]
		if want == "" || !strings.HasPrefix(h.Addr.String(), want) {
			t.Errorf("%s: site %q with bmc %s; ams is 127.0.1.x and fra 127.0.2.x", h.Name, h.Labels["site"], h.Addr)
		}
		if h.IPMIPort != 6230 || h.RedfishPort != 8443 {
			t.Errorf("%s: ports %d/%d, want the demo's 6230/8443", h.Name, h.IPMIPort, h.RedfishPort)
		}
	}
	if len(sites) != 2 {
		t.Errorf("sites = %v, want ams and fra only", sites)
	}
	for _, v := range knownVendors {
		if !vendors[v] {
			t.Errorf("no Redfish host simulates vendor %s", v)
		}
	}
	for _, s := range []string{"dead", "slow", "wrong-credentials", "panicked", "sol-busy", "overheat"} {
		if !scenarios[s] {
			t.Errorf("no host has scenario %s", s)
		}
	}
	db1, ok := inv.Host("db1")
	if !ok {
		t.Fatal("no db1")
	}
	if !reflect.DeepEqual(db1.Protocols, []string{"ipmi"}) || db1.Expect.Power != "on" || !contains(db1.Sim.Scenarios, "panicked") || db1.Labels["site"] != "ams" {
		t.Errorf("db1 = %+v, want an IPMI host in ams, expected on, panicked", *db1)
	}
	for _, g := range []string{"db", "web"} {
		if _, err := inv.Select("@" + g); err != nil {
			t.Errorf("group %s: %v", g, err)
		}
	}
	if probs := inv.Lint(); len(probs) == 0 || !strings.Contains(probs[0].Msg, "literal password") {
		t.Errorf("lint of the demo should start with the literal password warning, got %v", problemStrings(probs))
	}
}

func TestParseResolved(t *testing.T) {
	src := `version: 1
defaults:
  protocols: ipmi
  credentials: prod
  ipmi: {port: 6230, cipher_suite: 3}
  redfish: {port: 8443}
  labels: {site: ams, tier: 2}
  expect: {power: off}
credentials:
  prod: {user: admin, password_env: RMM_PROD_PASSWORD}
  other: {user: root, password_file: secrets/bmc.pass}
groups:
  db:
    description: "databases"
    labels: {role: db, tier: 1}
    expect: {power: on}
    ipmi: {cipher_suite: 17}
  rf: {protocols: [redfish, ipmi], credentials: other, redfish: {insecure: false}}
hosts:
  - name: db1
    bmc: 10.0.5.11
    groups: [db]
    labels: {rack: r12}
    expect: {guid: 0A1B2C3D-0000-1111-2222-333344445555, serial: " XYZ1 "}
    redfish: {fingerprint: "SHA256:3F:A1:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD"}
  - name: db2
    bmc: "10.0.5.12:7000"
    groups: [rf, db]
    protocols: [redfish]
    labels: {tier: 0}
  - name: v6
    bmc: "[fd00::11]:6231"
  - name: r[08-10]
    bmc: 10.1.0.[8-10]
    groups: [db]
    sim: {vendor: dell, scenario: slow, delay: 1500ms}
  - name: m4
    bmc: ::ffff:10.9.9.9
`
	inv, probs := Parse("inv.yaml", []byte(src))
	if inv == nil {
		t.Fatalf("invalid: %v", problemStrings(probs))
	}
	get := func(n string) *Host {
		h, ok := inv.Host(n)
		if !ok {
			t.Fatalf("no host %s", n)
		}
		return h
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"db1 protocols from defaults", get("db1").Protocols, []string{"ipmi"}},
		{"db1 labels merge, group beats defaults", get("db1").Labels, map[string]string{"site": "ams", "tier": "1", "role": "db", "rack": "r12"}},
		{"db1 cipher suite from group", get("db1").CipherSuite, 17},
		{"db1 ports", [2]uint16{get("db1").IPMIPort, get("db1").RedfishPort}, [2]uint16{6230, 8443}},
		{"db1 expect", get("db1").Expect, Expect{GUID: "0a1b2c3d-0000-1111-2222-333344445555", Serial: "XYZ1", Power: "on"}},
		{"db1 fingerprint normalised", get("db1").TLS.Fingerprint, "3fa100112233445566778899aabbccddeeff00112233445566778899aabbccdd"},
		{"db1 pos", get("db1").Pos, Pos{File: "inv.yaml", Line: 20}},
		{"db2 host protocols beat group", get("db2").Protocols, []string{"redfish"}},
		{"db2 credentials from first group", get("db2").Credentials, "other"},
		{"db2 later group beats earlier", get("db2").Expect.Power, "on"},
		{"db2 host label beats groups", get("db2").Labels["tier"], "0"},
		{"db2 port in bmc goes to redfish", [2]uint16{get("db2").IPMIPort, get("db2").RedfishPort}, [2]uint16{6230, 7000}},
		{"v6 address", get("v6").Addr, netip.MustParseAddr("fd00::11")},
		{"v6 port in bmc goes to ipmi", get("v6").IPMIPort, uint16(6231)},
		{"v6 power from defaults", get("v6").Expect.Power, "off"},
		{"range names in order", []string{inv.Hosts[3].Name, inv.Hosts[4].Name, inv.Hosts[5].Name}, []string{"r08", "r09", "r10"}},
		{"range addresses pair up", inv.Hosts[5].Addr, netip.MustParseAddr("10.1.0.10")},
		{"range sim", inv.Hosts[4].Sim, Sim{Vendor: "dell", Scenarios: []string{"slow"}, Delay: 1500 * time.Millisecond}},
		{"mapped v4 unmapped", get("m4").Addr, netip.MustParseAddr("10.9.9.9")},
		{"group description", inv.Groups["db"].Description, "databases"},
		{"relative password file", inv.Credentials["other"].Source(), "file " + filepath.Join("secrets", "bmc.pass")},
		{"env source", inv.Credentials["prod"].Source(), "env RMM_PROD_PASSWORD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

// TestParseErrors has one case per validation error, each asserting the
// exact file:line: message lines.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"host name where an IP belongs", header + "  - name: db1\n    bmc: db1-ipmi.example.com\n",
			[]string{`inv.yaml:11: bmc "db1-ipmi.example.com" is a host name; rmm never uses DNS, write the BMC's IP address`}},
		{"host name with port", header + "  - name: db1\n    bmc: db1-ipmi:623\n    protocols: ipmi\n",
			[]string{`inv.yaml:11: bmc "db1-ipmi:623" is a host name; rmm never uses DNS, write the BMC's IP address`}},
		{"bad IPv4", header + "  - name: db1\n    bmc: 10.0.5.300\n",
			[]string{`inv.yaml:11: bmc "10.0.5.300" is not an IP address (write it like 10.0.5.11, fd00::11, 10.0.5.11:6230 or [fd00::11]:6230)`}},
		{"IPv6 zone", header + "  - name: db1\n    bmc: fe80::1%eth0\n",
			[]string{`inv.yaml:11: bmc "fe80::1%eth0" has an IPv6 zone (%eth0); zones are not supported, write a global or unique-local address`}},
		{"not unicast", header + "  - name: db1\n    bmc: 0.0.0.0\n",
			[]string{`inv.yaml:11: bmc "0.0.0.0" is not a unicast address`}},
		{"bad port in bmc", header + "  - name: db1\n    bmc: 10.0.5.11:99999\n    protocols: ipmi\n",
			[]string{`inv.yaml:11: bmc "10.0.5.11:99999" has a bad port "99999": a port is 1-65535`}},
		{"ambiguous port", header + "  - name: db1\n    bmc: 10.0.5.11:6230\n    protocols: [ipmi, redfish]\n",
			[]string{`inv.yaml:11: bmc "10.0.5.11:6230" has a port, but db1 uses ipmi and redfish, so the port is ambiguous; set ipmi.port or redfish.port instead`}},
		{"port set twice", header + "  - name: db1\n    bmc: 10.0.5.11:6230\n    protocols: [ipmi, ipmitool]\n    ipmi: {port: 623}\n",
			[]string{`inv.yaml:11: bmc "10.0.5.11:6230" has port 6230 but ipmi.port is 623; set the port once`}},
		{"unknown keys, all at once", header + "  - name: db1\n    bmc: 10.0.5.11\n    protocol: ipmi\n    ipmi: {prot: 623}\n    color: red\n",
			[]string{
				`inv.yaml:12: unknown key "protocol" in host (did you mean "protocols"?)`,
				`inv.yaml:13: unknown key "prot" in ipmi (did you mean "port"?)`,
				`inv.yaml:14: unknown key "color" in host`,
			}},
		{"unknown top-level key", "version: 1\nhost:\n  - name: db1\n",
			[]string{
				`inv.yaml:1: the hosts list is missing`,
				`inv.yaml:2: unknown key "host" in the top level (did you mean "hosts"?)`,
			}},
		{"duplicate host names", header + "  - name: db1\n    bmc: 10.0.5.11\n  - name: db1\n    bmc: 10.0.5.12\n",
			[]string{`inv.yaml:12: duplicate host name "db1" (first at line 10)`}},
		{"duplicate host from a range", header + "  - name: db2\n    bmc: 10.0.5.2\n  - name: db[1-3]\n    bmc: 10.0.6.[1-3]\n",
			[]string{`inv.yaml:12: duplicate host name "db2" (first at line 10)`}},
		{"two hosts on one BMC IP", header + "  - name: db1\n    bmc: 10.0.5.11\n  - name: db2\n    bmc: 10.0.5.11\n",
			[]string{`inv.yaml:13: host db2 has bmc 10.0.5.11, already used by db1 (line 10); two hosts cannot share a BMC`}},
		{"same IP written two ways", header + "  - name: db1\n    bmc: 10.0.5.11\n  - name: db2\n    bmc: ::ffff:10.0.5.11\n",
			[]string{`inv.yaml:13: host db2 has bmc 10.0.5.11, already used by db1 (line 10); two hosts cannot share a BMC`}},
		{"unknown group", header + "  - name: db1\n    bmc: 10.0.5.11\n    groups: [dbb]\n",
			[]string{`inv.yaml:12: unknown group "dbb" (did you mean "db"?); groups are declared under groups:`}},
		{"group written with @", header + "  - name: db1\n    bmc: 10.0.5.11\n    groups: [\"@db\"]\n",
			[]string{`inv.yaml:12: unknown group "@db" (list groups without the @); groups are declared under groups:`}},
		{"group listed twice", header + "  - name: db1\n    bmc: 10.0.5.11\n    groups: [db, db]\n",
			[]string{`inv.yaml:12: group "db" is listed twice`}},
		{"unknown credentials", header + "  - name: db1\n    bmc: 10.0.5.11\n    credentials: prd\n",
			[]string{`inv.yaml:12: unknown credentials "prd" (did you mean "prod"?)`}},
		{"no credentials anywhere", "version: 1\nhosts:\n  - name: db1\n    bmc: 10.0.5.11\n",
			[]string{`inv.yaml:3: host db1 has no credentials: set credentials in defaults, in one of its groups, or on the host`}},
		{"bad port", header + "  - name: db1\n    bmc: 10.0.5.11\n    ipmi: {port: 70000}\n    redfish: {port: https}\n",
			[]string{
				`inv.yaml:12: ipmi.port 70000 is out of range: a port is 1-65535`,
				`inv.yaml:13: redfish.port "https" is not a port number (1-65535)`,
			}},
		{"bad fingerprint", header + "  - name: db1\n    bmc: 10.0.5.11\n    redfish: {fingerprint: \"sha256:3F:A1\"}\n",
			[]string{`inv.yaml:12: redfish.fingerprint "sha256:3F:A1" is not a SHA-256 fingerprint: want 64 hex digits, with or without colons, optionally after "sha256:"`}},
		{"bad cipher suite", header + "  - name: db1\n    bmc: 10.0.5.11\n    ipmi: {cipher_suite: 5}\n",
			[]string{`inv.yaml:12: ipmi.cipher_suite 5 is not supported: use 3 or 17 (1 and 2 are accepted too), or leave it out to let rmm choose`}},
		{"bad protocol", header + "  - name: db1\n    bmc: 10.0.5.11\n    protocols: [ipmi, redfsh]\n",
			[]string{`inv.yaml:12: unknown protocol "redfsh": use ipmi, redfish, ipmitool (did you mean "redfish"?)`}},
		{"protocol twice", header + "  - name: db1\n    bmc: 10.0.5.11\n    protocols: [ipmi, ipmi]\n",
			[]string{`inv.yaml:12: protocol "ipmi" is listed twice`}},
		{"empty protocols", header + "  - name: db1\n    bmc: 10.0.5.11\n    protocols: []\n",
			[]string{`inv.yaml:12: protocols is empty; list one or more of ipmi, redfish, ipmitool`}},
		{"duplicate YAML key", header + "  - name: db1\n    bmc: 10.0.5.11\n    bmc: 10.0.5.12\n",
			[]string{`inv.yaml:12: host: duplicate key "bmc" (first at line 11)`}},
		{"bad host name", header + "  - name: DB1\n    bmc: 10.0.5.11\n",
			[]string{`inv.yaml:10: host name "DB1" is not valid: use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit`}},
		{"reserved host name", header + "  - name: all\n    bmc: 10.0.5.11\n",
			[]string{`inv.yaml:10: host name "all" is reserved: the selector all means every host`}},
		{"no bmc", header + "  - name: db1\n",
			[]string{`inv.yaml:10: host db1 has no bmc address`}},
		{"no name", header + "  - bmc: 10.0.5.11\n",
			[]string{`inv.yaml:10: host entry has no name`}},
		{"range length mismatch", header + "  - name: web[01-20]\n    bmc: 127.0.2.[1-19]\n",
			[]string{`inv.yaml:11: name "web[01-20]" has 20 hosts but bmc "127.0.2.[1-19]" has 19 addresses; they must pair up one to one`}},
		{"range with one address", header + "  - name: web[1-2]\n    bmc: 127.0.2.1\n",
			[]string{`inv.yaml:11: name "web[1-2]" is a range of 2 hosts but bmc "127.0.2.1" is one address; write an address range of the same length, like 10.0.2.[1-2]`}},
		{"address range for one host", header + "  - name: web1\n    bmc: 127.0.2.[1-2]\n",
			[]string{`inv.yaml:11: bmc "127.0.2.[1-2]" is a range but name "web1" is a single host`}},
		{"bad range", header + "  - name: web[3-1]\n    bmc: 127.0.2.[3-1]\n",
			[]string{`inv.yaml:10: host name: bad range "web[3-1]": 3-1 counts down; write the smaller number first`}},
		{"identity on a range entry", header + "  - name: web[1-2]\n    bmc: 127.0.2.[1-2]\n    expect: {serial: X1}\n",
			[]string{`inv.yaml:10: expect.serial is one machine's identity: a range entry (web[1-2]) cannot carry it; give the host its own entry`}},
		{"identity in defaults", "version: 1\ndefaults:\n  credentials: prod\n  expect: {uuid: 0a1b2c3d-0000-1111-2222-333344445555}\ncredentials:\n  prod: {user: a, password_env: P}\nhosts:\n  - name: db1\n    bmc: 10.0.0.1\n",
			[]string{`inv.yaml:4: expect.uuid is one machine's identity: set it on the host entry, not in defaults`}},
		{"bad uuid", header + "  - name: db1\n    bmc: 10.0.5.11\n    expect: {uuid: 1234}\n",
			[]string{`inv.yaml:12: expect.uuid "1234" is not a GUID/UUID: want 8-4-4-4-12 hex digits`}},
		{"bad power", header + "  - name: db1\n    bmc: 10.0.5.11\n    expect: {power: up}\n",
			[]string{`inv.yaml:12: expect.power must be on or off, not "up"`}},
		{"insecure and pinned", header + "  - name: db1\n    bmc: 10.0.5.11\n    redfish: {insecure: true, fingerprint: 3fa100112233445566778899aabbccddeeff00112233445566778899aabbccdd}\n",
			[]string{`inv.yaml:10: host db1 has redfish.insecure: true and a pinned fingerprint; use one (insecure accepts any certificate)`}},
		{"insecure not a bool", header + "  - name: db1\n    bmc: 10.0.5.11\n    redfish: {insecure: yes}\n",
			[]string{`inv.yaml:12: redfish.insecure must be true or false, not "yes"`}},
		{"unknown sim values", header + "  - name: db1\n    bmc: 10.0.5.11\n    sim: {vendor: ibm, scenario: [dead, panic], delay: 3}\n",
			[]string{
				`inv.yaml:12: sim.vendor "ibm" is not one of dell, hpe, lenovo, supermicro, dmtf`,
				`inv.yaml:12: sim.scenario "panic" is not one of dead, slow, wrong-credentials, panicked, sol-busy, overheat, replaced (did you mean "panicked"?)`,
				`inv.yaml:12: sim.delay "3" is not a duration like 3s or 500ms`,
			}},
		{"bad label", header + "  - name: db1\n    bmc: 10.0.5.11\n    labels: {Rack: r1, row: \"a b\", empty: }\n",
			[]string{
				`inv.yaml:12: label "Rack" is not a valid label name: use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit ('/' allowed)`,
				`inv.yaml:12: label row="a b" is not a valid value: no blanks, commas or '='`,
				`inv.yaml:12: label empty has no value`,
			}},
		{"wrong version", "version: 2\n" + header[len("version: 1\n"):] + "  - name: db1\n    bmc: 10.0.5.11\n",
			[]string{`inv.yaml:1: version "2" is not supported: this rmm reads version 1`}},
		{"no version", header[len("version: 1\n"):] + "  - name: db1\n    bmc: 10.0.5.11\n",
			[]string{`inv.yaml:1: "version: 1" is missing`}},
		{"credentials: two sources", "version: 1\ncredentials:\n  prod: {user: a, password_env: P, password: x}\n",
			[]string{
				`inv.yaml:1: the hosts list is missing`,
				`inv.yaml:3: credentials prod: password_env, password are all set; use exactly one password source`,
			}},
		{"credentials: no source, no user", "version: 1\ncredentials:\n  prod: {password_command: [pass, show, x], timeout: 0s}\n  lit: {user: a, timeout: 3s, password_env: \"1X\"}\n",
			[]string{
				`inv.yaml:1: the hosts list is missing`,
				`inv.yaml:3: credentials prod: timeout must be more than 0s`,
				`inv.yaml:3: credentials prod: user is missing`,
				`inv.yaml:4: credentials lit: password_env "1X" is not an environment variable name`,
				`inv.yaml:4: credentials lit: timeout only applies to password_command`,
			}},
		{"password_command is not a shell line", "version: 1\ncredentials:\n  v: {user: a, password_command: pass show bmc/root}\n",
			[]string{
				`inv.yaml:1: the hosts list is missing`,
				`inv.yaml:3: credentials v: password_command must be a list of words like [pass, show, bmc/root]; rmm runs it without a shell`,
			}},
		{"alias", "version: 1\ndefaults: &d\n  credentials: prod\ngroups:\n  db: *d\nhosts: []\n",
			[]string{
				`inv.yaml:3: unknown credentials "prod"; credential sets are declared under credentials:`,
				`inv.yaml:5: db: YAML aliases (*name) are not supported; share settings with defaults or groups`,
				`inv.yaml:6: the hosts list is empty`,
			}},
		{"tag", header + "  - name: db1\n    bmc: !!str 10.0.5.11\n",
			[]string{`inv.yaml:11: bmc: YAML tags (!!str, !name) are not supported`}},
		{"YAML syntax error", header + "  - name: db1\n    bmc: [10.0.5.11\n",
			[]string{`inv.yaml:11: yaml: did not find expected ',' or ']'`}},
		{"YAML scanner error", header + "  - name: db1\n    bmc: a: b\n",
			[]string{`inv.yaml:11: yaml: mapping values are not allowed in this context`}},
		{"YAML parser error", header + "  - name: db1\n   bmc: 10.0.0.1\n",
			[]string{`inv.yaml:11: yaml: did not find expected '-' indicator`}},
		{"YAML error deep in a long list", header + strings.Repeat("  - {name: x, bmc: 10.0.0.1}\n", 50) + "  - name: db1\n    bmc: 10.0.0.2\n   groups: [db]\n",
			[]string{`inv.yaml:62: yaml: did not find expected '-' indicator`}},
		{"tab indentation", header + "  - name: db1\n\tbmc: 10.0.0.1\n",
			[]string{`inv.yaml:11: yaml: found a tab character that violates indentation`}},
		{"second document", "version: 1\n---\nversion: 1\n",
			[]string{`inv.yaml:2: a second YAML document (after ---) is not allowed; an inventory is one document`}},
		{"empty file", "# nothing yet\n",
			[]string{`inv.yaml:1: the file is empty; an inventory needs at least "version: 1" and a hosts list`}},
		{"top level is a list", "- name: db1\n",
			[]string{`inv.yaml:1: the top level must be a mapping (version:, defaults:, credentials:, groups:, hosts:), not a list`}},
		{"host is not a mapping", header + "  - db1\n",
			[]string{`inv.yaml:10: each host must be a mapping (name:, bmc:, ...), not "db1"`}},
		{"reserved group name", "version: 1\ngroups:\n  all: {}\nhosts: []\n",
			[]string{
				`inv.yaml:3: group name "all" is reserved: the selector all already means every host`,
				`inv.yaml:4: the hosts list is empty`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, probs := Parse("inv.yaml", []byte(tt.src))
			got := problemStrings(probs)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if inv != nil {
				t.Error("Parse returned an inventory along with errors")
			}
		})
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "inventory.yaml", Line: 14, Msg: "bad"}, "inventory.yaml:14: bad"},
		{Problem{File: "inventory.yaml", Line: 3, Warning: true, Msg: "weak"}, "inventory.yaml:3: warning: weak"},
		{Problem{File: "inventory.yaml", Msg: "unreadable"}, "inventory.yaml: unreadable"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.p.String(); got != tt.want {
				t.Errorf("got %q", got)
			}
		})
	}
}

func TestFindPath(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvInventory {
				return v
			}
			return ""
		}
	}
	exists := func(paths ...string) func(string) bool {
		return func(p string) bool { return contains(paths, p) }
	}
	tests := []struct {
		name    string
		flag    string
		getenv  func(string) string
		exists  func(string) bool
		want    string
		wantErr error
	}{
		{"flag wins", "a.yaml", env("b.yaml"), exists("inventory.yaml"), "a.yaml", nil},
		{"flag even if missing", "missing.yaml", env(""), exists("inventory.yaml"), "missing.yaml", nil},
		{"env next", "", env("b.yaml"), exists("inventory.yaml", "/etc/rmm/inventory.yaml"), "b.yaml", nil},
		{"current directory", "", env(""), exists("inventory.yaml", "/etc/rmm/inventory.yaml"), "inventory.yaml", nil},
		{"etc last", "", env(""), exists("/etc/rmm/inventory.yaml"), "/etc/rmm/inventory.yaml", nil},
		{"nothing", "", env(""), exists(), "", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FindPath(tt.flag, tt.getenv, tt.exists)
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("FindPath = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	t.Run("missing file", func(t *testing.T) {
		_, err := Load(filepath.Join(dir, "nope.yaml"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v, want not exist", err)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		p := filepath.Join(dir, "bad.yaml")
		os.WriteFile(p, []byte(header+"  - name: db1\n    bmc: db1.example.com\n  - name: db2\n    bmc: 10.0.0.2\n    groups: [nope]\n"), 0o644)
		_, err := Load(p)
		var le *LoadError
		if !errors.As(err, &le) {
			t.Fatalf("err = %v, want *LoadError", err)
		}
		want := p + `:11: bmc "db1.example.com" is a host name; rmm never uses DNS, write the BMC's IP address` + "\n" +
			p + `:14: unknown group "nope"; groups are declared under groups:`
		if err.Error() != want {
			t.Errorf("error:\n%s\nwant:\n%s", err, want)
		}
	})
	t.Run("valid", func(t *testing.T) {
		p := filepath.Join(dir, "ok.yaml")
		os.WriteFile(p, []byte(header+"  - name: db1\n    bmc: 10.0.0.1\n"), 0o644)
		inv, err := Load(p)
		if err != nil || inv.Path != p || len(inv.Hosts) != 1 {
			t.Errorf("Load = %+v, %v", inv, err)
		}
	})
}
