package redfish

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/rmm-project/rmm/bmc"
	"github.com/stmcginnis/gofish/redfish"
)

// systemInfo is the ComputerSystem rmm manages on this BMC.
type systemInfo struct {
	uri         string
	resetTarget string
	// allowed are the reset types the BMC lists; advertised is false when
	// it lists none at all (then only baseline types are sent).
	allowed    []string
	advertised bool
	managers   []string
	chassis    []string
}

// baselineResetTypes are sent to a BMC that lists no allowed reset types
// at all (neither inline nor through ActionInfo): the four every
// implementation of ComputerSystem.Reset supports in practice. Never
// PowerCycle, Nmi or PushPowerButton, whose support varies.
var baselineResetTypes = []string{"On", "ForceOff", "GracefulShutdown", "ForceRestart"}

// resetAction is the #ComputerSystem.Reset member of Actions.
type resetAction struct {
	Target     string   `json:"target"`
	Allowable  []string `json:"ResetType@Redfish.AllowableValues"`
	ActionInfo string   `json:"@Redfish.ActionInfo"`
}

type systemRaw struct {
	Actions struct {
		Reset *resetAction `json:"#ComputerSystem.Reset"`
	}
	Links struct {
		ManagedBy []link
		Chassis   []link
	}
	LogServices link
}

type managerRaw struct {
	Links struct {
		ManagerForServers []link
	}
}

// system finds the ComputerSystem to manage: the one with a Reset action,
// or among several the one a manager's ManagerForServers names. Ids are
// never assumed ("1", "System.Embedded.1", "437XR1138R2" all occur).
func (p *Provider) system() (*systemInfo, error) {
	if p.sys != nil {
		return p.sys, nil
	}
	systems, err := p.api.Service.Systems()
	if err != nil {
		return nil, fmt.Errorf("systems: %w", classify(err))
	}
	if len(systems) == 0 {
		return nil, fmt.Errorf("%w: the BMC lists no computer system", bmc.ErrUnsupported)
	}
	raws := map[string]systemRaw{}
	var cands []candidate
	for _, s := range systems {
		var r systemRaw
		_ = json.Unmarshal(s.RawData, &r)
		raws[s.ODataID] = r
		cands = append(cands, candidate{uri: s.ODataID, reset: r.Actions.Reset != nil && r.Actions.Reset.Target != ""})
	}
	var managed map[string]bool
	if needManagers(cands) {
		if managed, err = p.managedServers(); err != nil {
			return nil, err
		}
	}
	chosen, err := chooseSystem(cands, managed)
	if err != nil {
		return nil, err
	}
	r := raws[chosen]
	si := &systemInfo{uri: chosen}
	for _, m := range r.Links.ManagedBy {
		si.managers = append(si.managers, m.ID)
	}
	for _, c := range r.Links.Chassis {
		si.chassis = append(si.chassis, c.ID)
	}
	if ra := r.Actions.Reset; ra != nil {
		si.resetTarget = ra.Target
		si.allowed, si.advertised, err = p.allowedResetTypes(ra)
		if err != nil {
			return nil, err
		}
	}
	p.sys = si
	return si, nil
}

// candidate is a ComputerSystem as chooseSystem sees it.
type candidate struct {
	uri   string
	reset bool // has a #ComputerSystem.Reset action
}

// needManagers reports whether chooseSystem needs the managers' links.
func needManagers(cands []candidate) bool {
	n := 0
	for _, c := range cands {
		if c.reset {
			n++
		}
	}
	return n > 1 || (n == 0 && len(cands) > 1)
}

// chooseSystem picks the system to manage: the only one with a Reset
// action; the only system at all; or, among several, the only one that a
// manager's ManagerForServers (managed, by clean URI) names. Anything else
// is ambiguous and an error: rmm will not guess which node of a multi-node
// chassis to power off.
func chooseSystem(cands []candidate, managed map[string]bool) (string, error) {
	sort.Slice(cands, func(i, j int) bool { return cands[i].uri < cands[j].uri })
	var withReset []string
	for _, c := range cands {
		if c.reset {
			withReset = append(withReset, c.uri)
		}
	}
	switch {
	case len(cands) == 0:
		return "", fmt.Errorf("%w: the BMC lists no computer system", bmc.ErrUnsupported)
	case len(withReset) == 1:
		return withReset[0], nil
	case len(withReset) == 0 && len(cands) == 1:
		return cands[0].uri, nil
	}
	pool := withReset
	if len(pool) == 0 {
		for _, c := range cands {
			pool = append(pool, c.uri)
		}
	}
	var both []string
	for _, c := range pool {
		if managed[cleanURI(c)] {
			both = append(both, c)
		}
	}
	if len(both) == 1 {
		return both[0], nil
	}
	return "", fmt.Errorf("%w: the BMC lists %d computer systems (%s) and its managers do not single one out; rmm will not guess",
		bmc.ErrUnsupported, len(pool), strings.Join(pool, ", "))
}

// managedServers is the set of systems named by any manager's
// ManagerForServers.
func (p *Provider) managedServers() (map[string]bool, error) {
	managers, err := p.api.Service.Managers()
	if err != nil {
		return nil, fmt.Errorf("managers: %w", classify(err))
	}
	out := map[string]bool{}
	for _, m := range managers {
		var r managerRaw
		_ = json.Unmarshal(m.RawData, &r)
		for _, s := range r.Links.ManagerForServers {
			out[cleanURI(s.ID)] = true
		}
	}
	return out, nil
}

// allowedResetTypes reads what the BMC allows: inline AllowableValues,
// and/or the @Redfish.ActionInfo resource (gofish v0.20 reads only the
// former; Supermicro lists its types only in the latter). When both are
// given, a type must be in both.
func (p *Provider) allowedResetTypes(ra *resetAction) (allowed []string, advertised bool, err error) {
	inline := ra.Allowable
	if ra.ActionInfo == "" {
		return inline, len(inline) > 0, nil
	}
	var info actionInfo
	if err := p.getJSON(ra.ActionInfo, &info, true); err != nil {
		return nil, false, fmt.Errorf("reset ActionInfo: %w", err)
	}
	fromInfo, ok := info.values("ResetType")
	switch {
	case !ok:
		return inline, len(inline) > 0, nil
	case len(inline) == 0:
		return fromInfo, true, nil
	}
	for _, t := range inline {
		if slices.Contains(fromInfo, t) {
			allowed = append(allowed, t)
		}
	}
	return allowed, true, nil
}

// actionInfo is an @Redfish.ActionInfo resource.
type actionInfo struct {
	Parameters []struct {
		Name            string
		AllowableValues []string
	}
}

// values returns a parameter's allowable values.
func (a actionInfo) values(name string) ([]string, bool) {
	for _, p := range a.Parameters {
		if p.Name == name {
			return p.AllowableValues, true
		}
	}
	return nil, false
}

// may reports whether the BMC allows reset type t.
func (si *systemInfo) may(t string) bool {
	if !si.advertised {
		return slices.Contains(baselineResetTypes, t)
	}
	return slices.Contains(si.allowed, t)
}

// allowedList describes the allowed types for an error message.
func (si *systemInfo) allowedList() string {
	if !si.advertised {
		return "none advertised; rmm sends only " + strings.Join(baselineResetTypes, ", ")
	}
	if len(si.allowed) == 0 {
		return "none"
	}
	return strings.Join(si.allowed, ", ")
}

// powerState reads the system's PowerState afresh.
func (p *Provider) powerState() (bmc.PowerState, *redfish.ComputerSystem, error) {
	si, err := p.system()
	if err != nil {
		return bmc.PowerUnknown, nil, err
	}
	cs, err := redfish.GetComputerSystem(p.api, si.uri)
	if err != nil {
		return bmc.PowerUnknown, nil, fmt.Errorf("GET %s: %w", si.uri, classify(err))
	}
	if cs.PowerState == "" {
		return bmc.PowerUnknown, cs, fmt.Errorf("%w: %s reports no PowerState", bmc.ErrProtocol, si.uri)
	}
	return bmc.ParsePowerState(string(cs.PowerState)), cs, nil
}

// PowerStateGet returns "on", "off", "powering-on", "powering-off" or
// "unknown".
func (p *Provider) PowerStateGet(ctx context.Context) (string, error) {
	if err := p.start(ctx); err != nil {
		return "", err
	}
	st, _, err := p.powerState()
	if err != nil {
		return "", err
	}
	return string(st), nil
}

// PowerSet performs a bmc.PowerAction with IPMI's semantics (see
// bmc.PowerAction): on and off are idempotent, soft asks the OS, reset is
// a warm reset that needs a running host, and cycle is PowerCycle where the
// BMC offers it, else ForceRestart, else ForceOff then On; on an off host
// cycle powers on. A reset type the BMC does not list is never sent.
func (p *Provider) PowerSet(ctx context.Context, action string) (bool, error) {
	if err := p.start(ctx); err != nil {
		return false, bmc.NotSent(err)
	}
	act := bmc.PowerAction(strings.ToLower(strings.TrimSpace(action)))
	st, cs, err := p.powerState()
	if err != nil {
		return false, bmc.NotSent(err)
	}
	on := st == bmc.PowerOn || st == bmc.PowerPoweringOn
	switch act {
	case bmc.ActionOn:
		if on {
			return true, nil
		}
		return p.resetOne(cs, "On", "ForceOn", "PushPowerButton")
	case bmc.ActionOff:
		if st == bmc.PowerOff {
			return true, nil
		}
		return p.resetOne(cs, "ForceOff")
	case bmc.ActionSoft:
		if st == bmc.PowerOff {
			return true, nil
		}
		return p.resetOne(cs, "GracefulShutdown", "PushPowerButton")
	case bmc.ActionReset:
		if !on {
			return false, bmc.NotSent(&hintError{
				err:  fmt.Errorf("%w: the host is off, there is nothing to reset", bmc.ErrUnsupported),
				hint: "use 'rmm power on'",
			})
		}
		return p.resetOne(cs, "ForceRestart")
	case bmc.ActionCycle:
		if !on {
			return p.resetOne(cs, "On", "ForceOn")
		}
		si := p.sys
		if si.may("PowerCycle") {
			return p.resetOne(cs, "PowerCycle")
		}
		if si.may("ForceRestart") {
			return p.resetOne(cs, "ForceRestart")
		}
		if !si.may("ForceOff") || !(si.may("On") || si.may("ForceOn")) {
			return false, bmc.NotSent(fmt.Errorf("%w: cycle needs PowerCycle, ForceRestart or ForceOff and On; the BMC allows %s",
				bmc.ErrUnsupported, si.allowedList()))
		}
		if ok, err := p.resetOne(cs, "ForceOff"); !ok || err != nil {
			return ok, err
		}
		if err := p.waitOff(ctx); err != nil {
			return false, err
		}
		return p.resetOne(cs, "On", "ForceOn")
	}
	return false, bmc.NotSent(fmt.Errorf("%w: unknown power action %q", bmc.ErrUnsupported, action))
}

// resetOne posts the first of the given reset types that the BMC allows.
func (p *Provider) resetOne(cs *redfish.ComputerSystem, types ...string) (bool, error) {
	si := p.sys
	if si.resetTarget == "" {
		return false, bmc.NotSent(fmt.Errorf("%w: %s has no #ComputerSystem.Reset action", bmc.ErrUnsupported, si.uri))
	}
	for _, t := range types {
		if !si.may(t) {
			continue
		}
		// gofish posts {"ResetType": t} to the action target, with the
		// system's ETag as If-Match when the BMC sent one.
		if err := cs.Reset(redfish.ResetType(t)); err != nil {
			return false, fmt.Errorf("reset %s: %w", t, classify(err))
		}
		return true, nil
	}
	return false, bmc.NotSent(fmt.Errorf("%w: the BMC allows none of %s (it allows %s)",
		bmc.ErrUnsupported, strings.Join(types, ", "), si.allowedList()))
}

// waitOff polls until the system reports Off, for ForceOff-then-On.
func (p *Provider) waitOff(ctx context.Context) error {
	for i := 0; i < 120; i++ {
		st, _, err := p.powerState()
		if err != nil {
			return err
		}
		if st == bmc.PowerOff {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for the host to power off: %w", bmc.ErrTimeout, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("%w: the host did not power off within 30s of ForceOff", bmc.ErrTimeout)
}

// cleanURI compares URIs the way BMCs mean them: no trailing slash, no
// query or fragment.
func cleanURI(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	for len(u) > 1 && strings.HasSuffix(u, "/") {
		u = strings.TrimSuffix(u, "/")
	}
	return u
}
