package redfishsim

import (
	"fmt"
	"net/http"
	"slices"
)

// reset handles POST to a system's #ComputerSystem.Reset target: a reset
// type the tree does not advertise is refused with 400 and never reaches
// the machine.
func (s *Server) reset(si *systemInfo, body []byte) reply {
	var req struct{ ResetType *string }
	if err := decodeBody(body, &req); err != nil {
		return redfishError(http.StatusBadRequest, "Base.1.8.MalformedJSON",
			"The request body submitted was malformed JSON and could not be parsed by the receiving service.")
	}
	if req.ResetType == nil {
		return redfishError(http.StatusBadRequest, "Base.1.8.ActionParameterMissing",
			"The action #ComputerSystem.Reset requires the parameter ResetType to be present in the request body.")
	}
	rt := *req.ResetType
	s.mu.Lock()
	s.resetTypes = append(s.resetTypes, rt)
	s.mu.Unlock()
	if !slices.Contains(si.allowed, rt) {
		return redfishError(http.StatusBadRequest, "Base.1.8.ActionParameterValueNotInList",
			fmt.Sprintf("The value %q for the parameter ResetType in the action #ComputerSystem.Reset is not in the list of acceptable values %v.", rt, si.allowed))
	}
	m := s.cfg.Machine
	switch rt {
	case "On", "ForceOn":
		m.SetPower(true)
	case "ForceOff":
		m.SetPower(false)
	case "GracefulShutdown":
		m.SoftOff()
	case "ForceRestart", "GracefulRestart":
		if !m.Reset() {
			return conflict(rt)
		}
	case "PowerCycle":
		m.Cycle()
	case "PushPowerButton":
		// A short press: ACPI shutdown request when on, power up when off.
		if m.PowerOn() {
			m.SoftOff()
		} else {
			m.SetPower(true)
		}
	case "Nmi":
		// The simulated host runs with kernel.unknown_nmi_panic=1, as
		// crash-dump setups do: a diagnostic interrupt panics it.
		if !m.PowerOn() {
			return conflict(rt)
		}
		m.Panic()
	default: // advertised by the tree but not simulated (Suspend, Pause, ...)
		return redfishError(http.StatusBadRequest, "Base.1.8.ActionParameterNotSupported",
			fmt.Sprintf("The simulator does not implement ResetType %s.", rt))
	}
	return s.success()
}

// conflict refuses an action that needs a running host.
func conflict(rt string) reply {
	return redfishError(http.StatusConflict, "Base.1.8.OperationNotAllowed",
		fmt.Sprintf("ResetType %s needs the system to be powered on; it is off.", rt))
}
