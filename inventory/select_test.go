package inventory

import (
	"reflect"
	"strings"
	"testing"
)

const selectInventory = `version: 1
defaults: {credentials: c, labels: {dc: eu}}
credentials:
  c: {user: u, password_env: P}
groups:
  db: {}
  web: {}
  ams: {labels: {site: ams}}
  fra: {labels: {site: fra}}
  spare: {}
hosts:
  - {name: db1, bmc: 10.0.0.1, groups: [db, ams], labels: {rack: r1}}
  - {name: db2, bmc: 10.0.0.2, groups: [db, ams], labels: {rack: r1}}
  - {name: db3, bmc: 10.0.0.3, groups: [db, fra], labels: {rack: r2}}
  - {name: db12, bmc: 10.0.0.12, groups: [db, fra]}
  - name: web[01-04]
    bmc: 10.0.1.[1-4]
    groups: [web, ams]
  - {name: lb1, bmc: 10.0.2.1, labels: {site: ams, role: lb}}
`

func names(hs []*Host) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Name
	}
	return out
}

func TestSelect(t *testing.T) {
	inv, probs := Parse("inv.yaml", []byte(selectInventory))
	if inv == nil {
		t.Fatal(problemStrings(probs))
	}
	all := names(inv.Hosts)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"all", []string{"all"}, all},
		{"one name", []string{"db2"}, []string{"db2"}},
		{"comma list in inventory order", []string{"web02,db1"}, []string{"db1", "web02"}},
		{"arguments are a union, deduplicated", []string{"db1", "db1,db2", "@db"}, []string{"db1", "db2", "db3", "db12"}},
		{"range", []string{"web[02-03]"}, []string{"web02", "web03"}},
		{"range list", []string{"db[1-2,12]"}, []string{"db1", "db2", "db12"}},
		{"glob star", []string{"web*"}, []string{"web01", "web02", "web03", "web04"}},
		{"glob question", []string{"db?"}, []string{"db1", "db2", "db3"}},
		{"glob class", []string{"db[13]*"}, []string{"db1", "db3", "db12"}},
		{"group", []string{"@fra"}, []string{"db3", "db12"}},
		{"label", []string{"site=ams"}, []string{"db1", "db2", "web01", "web02", "web03", "web04", "lb1"}},
		{"label from the host", []string{"rack=r1"}, []string{"db1", "db2"}},
		{"label not equal includes hosts without it", []string{"rack!=r1"}, []string{"db3", "db12", "web01", "web02", "web03", "web04", "lb1"}},
		{"exclusion with !", []string{"all,!db3"}, []string{"db1", "db2", "db12", "web01", "web02", "web03", "web04", "lb1"}},
		{"exclusion with -", []string{"@web,-web02"}, []string{"web01", "web03", "web04"}},
		{"only exclusions start from all", []string{"!@web,!lb1"}, []string{"db1", "db2", "db3", "db12"}},
		{"exclusion in its own argument applies to all", []string{"@db", "!db3"}, []string{"db1", "db2", "db12"}},
		{"exclude a label", []string{"@db,!site=fra"}, []string{"db1", "db2"}},
		{"exclude a range", []string{"all,!web[01-03],!db*"}, []string{"web04", "lb1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, err := inv.Select(tt.args...)
			if err != nil {
				t.Fatalf("Select(%q): %v", tt.args, err)
			}
			if got := names(hs); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Select(%q) = %v, want %v", tt.args, got, tt.want)
			}
		})
	}
}

func TestSelectErrors(t *testing.T) {
	inv, probs := Parse("inv.yaml", []byte(selectInventory))
	if inv == nil {
		t.Fatal(problemStrings(probs))
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no arguments", nil, "no hosts given: name hosts, a group like @db, or all"},
		{"empty argument", []string{""}, "an empty host selector was given"},
		{"empty term", []string{"db1,,db2"}, `selector "db1,,db2" has an empty term (a doubled or trailing comma?)`},
		{"trailing comma", []string{"db1,"}, `selector "db1," has an empty term (a doubled or trailing comma?)`},
		{"bare exclusion", []string{"all,!"}, `"!" excludes nothing: write the host, @group or label after it`},
		{"unknown name with suggestion", []string{"db4"}, `no host named "db4"; did you mean db1?`},
		{"transposed name", []string{"bd1"}, `no host named "bd1"; did you mean db1?`},
		{"unknown name, nothing close", []string{"mailserver"}, `no host named "mailserver"`},
		{"group name without @", []string{"web"}, `no host named "web"; did you mean the group @web?`},
		{"unknown excluded name is an error too", []string{"all,!db33"}, `no host named "db33"; did you mean db3?`},
		{"range member missing", []string{"db[1-4]"}, `range "db[1-4]" includes db4, which is not in the inventory`},
		{"bad range", []string{"db[3-1]"}, `bad range "db[3-1]": 3-1 counts down; write the smaller number first`},
		{"range too large", []string{"db[1-999999]"}, `bad range "db[1-999999]": it expands to more than 100000 names`},
		{"glob matches nothing", []string{"mail*"}, `"mail*" matches no host`},
		{"bad glob", []string{"db[*"}, `bad pattern "db[*": syntax error in pattern`},
		{"unknown group", []string{"@dbs"}, `no group named "@dbs"; did you mean @db?`},
		{"host used as group", []string{"@lb1"}, `no group named "@lb1"; lb1 is a host: write it without the @`},
		{"empty group", []string{"@spare"}, `group "@spare" has no hosts`},
		{"unknown label", []string{"stie=ams"}, `no host has a label "stie"; did you mean site?`},
		{"unknown label value", []string{"site=amss"}, `no host has site=amss; did you mean site=ams?`},
		{"label value far off", []string{"site=paris"}, `no host has site=paris (site is one of: ams, fra)`},
		{"label without name", []string{"=ams"}, `label selector "=ams" has no label name (write it like site=ams)`},
		{"label without value", []string{"site="}, `label selector "site=" has no value (write it like site=ams)`},
		{"not-equal matching nothing", []string{"dc!=eu"}, `"dc!=eu" matches no host: every host has dc=eu`},
		{"everything excluded", []string{"@db,!@db"}, `@db,!@db selects no host: the exclusions remove every host it names`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs, err := inv.Select(tt.args...)
			if err == nil {
				t.Fatalf("Select(%q) = %v, want error %q", tt.args, names(hs), tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Select(%q) error:\n got %q\nwant %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestExpandRange(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		isRange bool
		err     string
	}{
		{in: "db1", want: []string{"db1"}},
		{in: "db[1-3]", want: []string{"db1", "db2", "db3"}, isRange: true},
		{in: "db[08-10]", want: []string{"db08", "db09", "db10"}, isRange: true},
		{in: "db[8-10]", want: []string{"db8", "db9", "db10"}, isRange: true},
		{in: "db[1-2,7]", want: []string{"db1", "db2", "db7"}, isRange: true},
		{in: "r[1-2]n[1-2]", want: []string{"r1n1", "r1n2", "r2n1", "r2n2"}, isRange: true},
		{in: "10.0.0.[1-2]:623", want: []string{"10.0.0.1:623", "10.0.0.2:623"}, isRange: true},
		{in: "[fd00::1]:623", want: []string{"[fd00::1]:623"}},
		{in: "db[ab]", want: []string{"db[ab]"}},
		{in: "db[1", want: []string{"db[1"}},
		{in: "db[3-1]", isRange: true, err: `bad range "db[3-1]": 3-1 counts down; write the smaller number first`},
		{in: "db[1-]", isRange: true, err: `bad range "db[1-]": "1-" is not a number or a span like 1-12`},
		{in: "db[1,,2]", isRange: true, err: `bad range "db[1,,2]": "" is not a number or a span like 1-12`},
		{in: "db[1-1234567890]", isRange: true, err: `bad range "db[1-1234567890]": "1-1234567890" has numbers that are too long`},
		{in: "a[1-1000]b[1-1000]", isRange: true, err: `range "a[1-1000]b[1-1000]" expands to more than 100000 names`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, isRange, err := expandRange(tt.in)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || isRange != tt.isRange || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("expandRange = %v, %v, %v; want %v, %v", got, isRange, err, tt.want, tt.isRange)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	cands := []string{"db1", "db12", "web01", "redfish", "panicked"}
	tests := []struct{ in, want string }{
		{"db2", "db1"},
		{"bd1", "db1"},
		{"redfsh", "redfish"},
		{"panic", "panicked"},
		{"x", ""},
		{"mailserver", ""},
		{strings.Repeat("a", 200), ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := suggest(tt.in, cands); got != tt.want {
				t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
