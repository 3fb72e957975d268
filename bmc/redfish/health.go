package redfish

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/rmm-project/rmm/bmc"
)

// maxSensors bounds the Sensors members read one by one when a chassis has
// no legacy Thermal/Power resources.
const maxSensors = 500

// status is a Redfish Status, read tolerantly: Lenovo sends "Health":
// "None" for sensors it does not monitor.
type status struct {
	State        string
	Health       string
	HealthRollup string
	Conditions   []struct {
		Message  string
		Severity string
	}
}

// reading is a number that may be null, absent or junk (gofish v0.20
// decodes these as float32 zero, so "no threshold" reads as a threshold of
// 0, and a string fails the whole resource).
type reading struct{ v *float64 }

// UnmarshalJSON keeps numbers and ignores anything else.
func (r *reading) UnmarshalJSON(b []byte) error {
	// json.Unmarshal leaves a float untouched (0) for null: a threshold the
	// BMC does not have must stay absent, not become "0 C".
	if string(bytes.TrimSpace(b)) == "null" {
		return nil
	}
	var f float64
	if json.Unmarshal(b, &f) == nil {
		r.v = &f
	}
	return nil
}

type thermalRaw struct {
	Temperatures []struct {
		Name                   string
		ReadingCelsius         reading
		UpperThresholdCritical reading
		UpperThresholdFatal    reading
		Status                 status
	}
	Fans []struct {
		Name         string
		FanName      string
		Reading      reading
		ReadingUnits string
		Status       status
	}
}

type powerRaw struct {
	PowerSupplies []struct {
		Name                 string
		LastPowerOutputWatts reading
		Status               status
	}
	Voltages []struct {
		Name         string
		ReadingVolts reading
		Status       status
	}
}

type chassisRaw struct {
	ODataID          string `json:"@odata.id"`
	ID               string `json:"Id"`
	Status           status
	Thermal          link
	Power            link
	Sensors          link
	ThermalSubsystem link
	PowerSubsystem   link
	Links            struct{ ComputerSystems []link }
}

// Health reads the System and Chassis rollups, then each chassis's
// sensors: the legacy Thermal and Power resources, or, where a chassis has
// none (newer firmware dropped them), ThermalSubsystem fans,
// PowerSubsystem supplies and the Sensors collection. A rollup worse than
// every sensor is reported with the BMC's reason when it gives one (HPE:
// Oem.Hpe.AggregateHealthStatus; DMTF: Status.Conditions).
func (p *Provider) Health(ctx context.Context) (bmc.Health, error) {
	if err := p.start(ctx); err != nil {
		return bmc.Health{}, err
	}
	si, err := p.system()
	if err != nil {
		return bmc.Health{}, err
	}
	var h bmc.Health
	type rollupWhy struct {
		idx     int
		reasons []string
	}
	var whys []rollupWhy

	var sys struct {
		ID     string `json:"Id"`
		Status status
		Oem    struct {
			Hpe struct {
				AggregateHealthStatus map[string]json.RawMessage
			}
		}
	}
	if err := p.getJSON(si.uri, &sys, true); err != nil {
		return h, err
	}
	hpeReasons := hpeAggregate(sys.Oem.Hpe.AggregateHealthStatus)
	if it, ok := rollupItem("system "+sys.ID, sys.Status); ok {
		h.Rollups = append(h.Rollups, it)
		whys = append(whys, rollupWhy{len(h.Rollups) - 1, append(conditions(sys.Status), hpeReasons...)})
	}

	var coll struct{ Members []link }
	if err := p.getJSON(orDefault(p.root.Chassis.ID, "/redfish/v1/Chassis"), &coll, true); err != nil {
		return h, err
	}
	for _, m := range coll.Members {
		var ch chassisRaw
		if err := p.getJSON(m.ID, &ch, true); err != nil {
			return h, err
		}
		if it, ok := rollupItem("chassis "+orDefault(ch.ID, lastSegment(m.ID)), ch.Status); ok {
			reasons := conditions(ch.Status)
			for _, cs := range ch.Links.ComputerSystems {
				if cleanURI(cs.ID) == cleanURI(si.uri) {
					reasons = append(reasons, hpeReasons...)
				}
			}
			h.Rollups = append(h.Rollups, it)
			whys = append(whys, rollupWhy{len(h.Rollups) - 1, reasons})
		}
		sensors, err := p.chassisSensors(ch)
		if err != nil {
			return h, err
		}
		h.Sensors = append(h.Sensors, sensors...)
	}

	worstSensor := -1
	for _, s := range h.Sensors {
		worstSensor = max(worstSensor, s.Severity.Rank())
	}
	for _, w := range whys {
		it := &h.Rollups[w.idx]
		if it.Severity.Rank() <= max(worstSensor, 0) {
			continue
		}
		if len(w.reasons) == 0 {
			it.Detail = fmt.Sprintf("rollup %s while no sensor reads worse than %s; the BMC gives no reason",
				it.Severity, bmc.Severity(severityName(max(worstSensor, 0))))
		} else {
			it.Detail = strings.Join(w.reasons, "; ")
		}
	}
	return h, nil
}

func severityName(rank int) string {
	switch rank {
	case 2:
		return string(bmc.SeverityCritical)
	case 1:
		return string(bmc.SeverityWarning)
	}
	return string(bmc.SeverityInfo)
}

// healthSeverity maps a Redfish Health value; ok is false when there is
// none ("None" is Lenovo's way of saying so).
func healthSeverity(h string) (bmc.Severity, bool) {
	switch strings.ToLower(strings.TrimSpace(h)) {
	case "ok":
		return bmc.SeverityInfo, true
	case "warning":
		return bmc.SeverityWarning, true
	case "critical":
		return bmc.SeverityCritical, true
	}
	return "", false
}

// rollupItem is the worse of Health and HealthRollup.
func rollupItem(name string, st status) (bmc.HealthItem, bool) {
	it := bmc.HealthItem{Name: name, Kind: "rollup", Severity: bmc.SeverityInfo}
	found := false
	for _, h := range []string{st.Health, st.HealthRollup} {
		if s, ok := healthSeverity(h); ok {
			found = true
			if s.Rank() > it.Severity.Rank() {
				it.Severity = s
			}
		}
	}
	return it, found
}

func conditions(st status) []string {
	var out []string
	for _, c := range st.Conditions {
		if c.Message != "" {
			out = append(out, c.Message)
		}
	}
	return out
}

// hpeAggregate lists the subsystems iLO's AggregateHealthStatus reports
// as not OK ("Oem.Hpe.AggregateHealthStatus.Storage: Critical").
func hpeAggregate(agg map[string]json.RawMessage) []string {
	var keys []string
	for k := range agg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		var v struct{ Status status }
		if json.Unmarshal(agg[k], &v) != nil {
			continue
		}
		if s, ok := healthSeverity(v.Status.Health); ok && s != bmc.SeverityInfo {
			out = append(out, fmt.Sprintf("Oem.Hpe.AggregateHealthStatus.%s: %s", k, v.Status.Health))
		}
	}
	return out
}

// skipped reports whether a sensor is not installed or not monitored.
func skipped(st status) bool {
	switch strings.ToLower(st.State) {
	case "absent", "disabled", "standbyoffline", "unavailableoffline":
		return true
	}
	return false
}

// sensorItem builds one sensor's finding.
func sensorItem(name, kind string, r reading, unit string, st status, detail func() string) bmc.HealthItem {
	it := bmc.HealthItem{Name: name, Kind: kind, Reading: r.v, Unit: unit, Severity: bmc.SeverityInfo}
	if s, ok := healthSeverity(st.Health); ok {
		it.Severity = s
	}
	if it.Severity != bmc.SeverityInfo {
		it.Detail = "health " + st.Health
		if detail != nil {
			if d := detail(); d != "" {
				it.Detail = d
			}
		}
	}
	return it
}

// chassisSensors reads one chassis's sensors.
func (p *Provider) chassisSensors(ch chassisRaw) ([]bmc.HealthItem, error) {
	var out []bmc.HealthItem
	needSensors := false
	if ch.Thermal.ID != "" {
		var t thermalRaw
		if err := p.getJSON(ch.Thermal.ID, &t, true); err != nil {
			return nil, err
		}
		for _, x := range t.Temperatures {
			if skipped(x.Status) {
				continue
			}
			out = append(out, sensorItem(x.Name, "temperature", x.ReadingCelsius, "C", x.Status, func() string {
				return overThreshold(x.ReadingCelsius, x.UpperThresholdCritical, x.UpperThresholdFatal, "C")
			}))
		}
		for _, f := range t.Fans {
			if skipped(f.Status) {
				continue
			}
			out = append(out, sensorItem(orDefault(f.Name, f.FanName), "fan", f.Reading, fanUnit(f.ReadingUnits), f.Status, nil))
		}
	} else if ch.ThermalSubsystem.ID != "" {
		fans, err := p.subsystemFans(ch.ThermalSubsystem.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, fans...)
		needSensors = true
	}
	if ch.Power.ID != "" {
		var pw powerRaw
		if err := p.getJSON(ch.Power.ID, &pw, true); err != nil {
			return nil, err
		}
		for _, ps := range pw.PowerSupplies {
			if skipped(ps.Status) {
				continue
			}
			out = append(out, sensorItem(ps.Name, "power", ps.LastPowerOutputWatts, "W", ps.Status, nil))
		}
		for _, v := range pw.Voltages {
			if skipped(v.Status) {
				continue
			}
			out = append(out, sensorItem(v.Name, "voltage", v.ReadingVolts, "V", v.Status, nil))
		}
	} else if ch.PowerSubsystem.ID != "" {
		psus, err := p.subsystemSupplies(ch.PowerSubsystem.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, psus...)
		needSensors = true
	}
	if needSensors && ch.Sensors.ID != "" {
		s, err := p.sensorCollection(ch.Sensors.ID, ch.Thermal.ID == "", ch.Power.ID == "")
		if err != nil {
			return nil, err
		}
		out = append(out, s...)
	}
	return out, nil
}

func fanUnit(u string) string {
	switch strings.ToLower(u) {
	case "rpm":
		return "RPM"
	case "percent":
		return "%"
	}
	return u
}

// overThreshold explains a temperature's severity from its thresholds.
func overThreshold(r, crit, fatal reading, unit string) string {
	if r.v == nil {
		return ""
	}
	switch {
	case fatal.v != nil && *r.v >= *fatal.v:
		return fmt.Sprintf("%g %s, at or above upper fatal %g %s", *r.v, unit, *fatal.v, unit)
	case crit.v != nil && *r.v >= *crit.v:
		return fmt.Sprintf("%g %s, at or above upper critical %g %s", *r.v, unit, *crit.v, unit)
	}
	return ""
}

// subsystemFans reads ThermalSubsystem.Fans members.
func (p *Provider) subsystemFans(uri string) ([]bmc.HealthItem, error) {
	var ts struct{ Fans link }
	if err := p.getJSON(uri, &ts, true); err != nil {
		return nil, err
	}
	if ts.Fans.ID == "" {
		return nil, nil
	}
	members, err := p.collectionMembers(ts.Fans.ID)
	if err != nil {
		return nil, err
	}
	var out []bmc.HealthItem
	for _, raw := range members {
		var f struct {
			Name         string
			SpeedPercent struct {
				Reading  reading
				SpeedRPM reading
			}
			Status status
		}
		if json.Unmarshal(raw, &f) != nil || skipped(f.Status) {
			continue
		}
		r, unit := f.SpeedPercent.Reading, "%"
		if f.SpeedPercent.SpeedRPM.v != nil {
			r, unit = f.SpeedPercent.SpeedRPM, "RPM"
		}
		out = append(out, sensorItem(f.Name, "fan", r, unit, f.Status, nil))
	}
	return out, nil
}

// subsystemSupplies reads PowerSubsystem.PowerSupplies members.
func (p *Provider) subsystemSupplies(uri string) ([]bmc.HealthItem, error) {
	var ps struct{ PowerSupplies link }
	if err := p.getJSON(uri, &ps, true); err != nil {
		return nil, err
	}
	if ps.PowerSupplies.ID == "" {
		return nil, nil
	}
	members, err := p.collectionMembers(ps.PowerSupplies.ID)
	if err != nil {
		return nil, err
	}
	var out []bmc.HealthItem
	for _, raw := range members {
		var s struct {
			Name   string
			Status status
		}
		if json.Unmarshal(raw, &s) != nil || skipped(s.Status) {
			continue
		}
		out = append(out, sensorItem(s.Name, "power", reading{}, "", s.Status, nil))
	}
	return out, nil
}

// sensorCollection reads Sensors members: temperatures when thermal is
// missing, voltages, currents and power when power is.
func (p *Provider) sensorCollection(uri string, thermal, power bool) ([]bmc.HealthItem, error) {
	members, err := p.collectionMembers(uri)
	if err != nil {
		return nil, err
	}
	if len(members) > maxSensors {
		members = members[:maxSensors]
	}
	var out []bmc.HealthItem
	for _, raw := range members {
		var s struct {
			Name         string
			ReadingType  string
			Reading      reading
			ReadingUnits string
			Status       status
			Thresholds   struct {
				UpperCritical struct{ Reading reading }
				UpperFatal    struct{ Reading reading }
			}
		}
		if json.Unmarshal(raw, &s) != nil || skipped(s.Status) {
			continue
		}
		kind := ""
		switch s.ReadingType {
		case "Temperature":
			if thermal {
				kind = "temperature"
			}
		case "Voltage":
			if power {
				kind = "voltage"
			}
		case "Current":
			if power {
				kind = "current"
			}
		case "Power":
			if power {
				kind = "power"
			}
		}
		if kind == "" {
			continue
		}
		out = append(out, sensorItem(s.Name, kind, s.Reading, s.ReadingUnits, s.Status, func() string {
			return overThreshold(s.Reading, s.Thresholds.UpperCritical.Reading, s.Thresholds.UpperFatal.Reading, s.ReadingUnits)
		}))
	}
	return out, nil
}
