package ipmi

import (
	"context"
	"fmt"
	"strings"

	"github.com/bougou/go-ipmi/pkg/command/chassis"
	"github.com/bougou/go-ipmi/pkg/types"
	"github.com/rmm-project/rmm/bmc"
	"github.com/rmm-project/rmm/bmc/ipmi/rmcp"
)

// Health reads the sensors the SDR repository describes (full and compact
// records) with Get Sensor Reading: analog readings converted with the
// record's factors and units, threshold status mapped to severity (non-
// critical: warning; critical, non-recoverable: critical), discrete states
// named and rated like SEL events. Chassis Status faults form the one
// rollup IPMI has. Sensors the BMC cannot read right now are skipped.
func (p *Provider) Health(ctx context.Context) (bmc.Health, error) {
	s, err := p.session()
	if err != nil {
		return bmc.Health{}, err
	}
	var h bmc.Health
	var cs chassis.GetChassisStatusResponse
	if err := s.Do(ctx, &chassis.GetChassisStatusRequest{}, &cs); err != nil {
		return bmc.Health{}, fmt.Errorf("health: %w", err)
	}
	h.Rollups = append(h.Rollups, chassisRollup(&cs))

	sdrs, err := p.sensorRecords(ctx)
	if err != nil {
		return bmc.Health{}, fmt.Errorf("health: %w", err)
	}
	for _, sdr := range sdrs.sensors {
		item, ok, err := readSensor(ctx, s, sdr)
		if err != nil {
			return bmc.Health{}, fmt.Errorf("health: sensor %q: %w", sdr.SensorName(), err)
		}
		if ok {
			h.Sensors = append(h.Sensors, item)
		}
	}
	return h, nil
}

// chassisRollup turns Get Chassis Status fault bits into one item.
func chassisRollup(cs *chassis.GetChassisStatusResponse) bmc.HealthItem {
	it := bmc.HealthItem{Name: "chassis", Kind: "rollup", Severity: bmc.SeverityInfo}
	var crit, warn []string
	if cs.PowerFault {
		crit = append(crit, "power fault")
	}
	if cs.PowerControlFault {
		crit = append(crit, "power control fault")
	}
	if cs.PowerOverload {
		crit = append(crit, "power overload")
	}
	if cs.CollingFanFault {
		crit = append(crit, "cooling/fan fault")
	}
	if cs.InterLock {
		warn = append(warn, "interlock active")
	}
	if cs.DriveFault {
		warn = append(warn, "drive fault")
	}
	if cs.ChassisIntrusionActive {
		warn = append(warn, "chassis intrusion")
	}
	switch {
	case len(crit) > 0:
		it.Severity = bmc.SeverityCritical
	case len(warn) > 0:
		it.Severity = bmc.SeverityWarning
	}
	it.Detail = strings.Join(append(crit, warn...), ", ")
	return it
}

// readSensor reads one sensor. ok is false for sensors without a reading:
// event-only records, and sensors the BMC reports absent, disabled or not
// yet scanned.
func readSensor(ctx context.Context, s *rmcp.Session, sdr *types.SDR) (bmc.HealthItem, bool, error) {
	var num uint8
	var st types.SensorType
	switch {
	case sdr.Full != nil:
		num, st = uint8(sdr.Full.SensorNumber), sdr.Full.SensorType
	case sdr.Compact != nil:
		num, st = uint8(sdr.Compact.SensorNumber), sdr.Compact.SensorType
	default:
		return bmc.HealthItem{}, false, nil
	}
	d, err := s.Raw(ctx, types.NetFnSensorEventRequest, types.CommandGetSensorReading.ID, []byte{num})
	if err != nil {
		var ce *rmcp.CompletionError
		if asCompletion(err, &ce) {
			return bmc.HealthItem{}, false, nil // absent, unsupported, not now
		}
		return bmc.HealthItem{}, false, err
	}
	if len(d) < 2 || d[1]&0x20 != 0 || d[1]&0x40 == 0 {
		return bmc.HealthItem{}, false, nil // reading unavailable or scanning disabled
	}
	it := bmc.HealthItem{
		Name:     strings.TrimRight(sdr.SensorName(), "\x00 "),
		Kind:     sensorKind(st),
		Severity: bmc.SeverityInfo,
	}
	if f := sdr.Full; f != nil && f.SensorEventReadingType == types.EventReadingTypeThreshold && f.HasAnalogReading() {
		v := f.ConvertReading(d[0])
		it.Reading = &v
		it.Unit = f.SensorUnit.String()
		if len(d) >= 3 {
			it.Severity, it.Detail = thresholdStatus(d[2])
		}
		return it, true, nil
	}
	// Discrete: name the asserted states and rate them like SEL events.
	var states uint16
	if len(d) >= 3 {
		states = uint16(d[2])
	}
	if len(d) >= 4 {
		states |= uint16(d[3]&0x7f) << 8
	}
	et := eventReadingType(sdr)
	var names []string
	for off := uint8(0); off < 15; off++ {
		if states&(1<<off) == 0 {
			continue
		}
		ed := types.EventData{EventData1: off}
		if n := eventText(st, et, ed); n != "" {
			names = append(names, n)
		}
		if sev := eventSeverity(st, et, ed, false); sev.Rank() > it.Severity.Rank() {
			it.Severity = sev
		}
	}
	it.Detail = strings.Join(names, ", ")
	return it, true, nil
}

func eventReadingType(sdr *types.SDR) types.EventReadingType {
	if sdr.Full != nil {
		return sdr.Full.SensorEventReadingType
	}
	return sdr.Compact.SensorEventReadingType
}

// thresholdStatus maps the threshold comparison bits of Get Sensor Reading
// (byte 3) to a severity and an explanation.
func thresholdStatus(b byte) (bmc.Severity, string) {
	switch {
	case b&0x20 != 0:
		return bmc.SeverityCritical, "at or above upper non-recoverable threshold"
	case b&0x04 != 0:
		return bmc.SeverityCritical, "at or below lower non-recoverable threshold"
	case b&0x10 != 0:
		return bmc.SeverityCritical, "at or above upper critical threshold"
	case b&0x02 != 0:
		return bmc.SeverityCritical, "at or below lower critical threshold"
	case b&0x08 != 0:
		return bmc.SeverityWarning, "at or above upper non-critical threshold"
	case b&0x01 != 0:
		return bmc.SeverityWarning, "at or below lower non-critical threshold"
	}
	return bmc.SeverityInfo, ""
}

// sensorKind names the health item kinds rmm's output groups by.
func sensorKind(st types.SensorType) string {
	switch st {
	case 0x01:
		return "temperature"
	case 0x02:
		return "voltage"
	case 0x03:
		return "current"
	case 0x04:
		return "fan"
	case 0x08, 0x09:
		return "power"
	case 0x07:
		return "processor"
	case 0x0c:
		return "memory"
	case 0x0d:
		return "drive"
	}
	return strings.ToLower(sensorTypeName(st))
}
