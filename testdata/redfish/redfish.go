// Package redfishtrees embeds the Redfish service trees captured from real
// BMCs (Dell iDRAC9, HPE iLO 5, Lenovo XCC, Supermicro) and DMTF's reference
// mockup, pruned to what rmm uses.
//
// The package lives beside the data because go:embed cannot reach parent
// directories; sim/redfishsim imports it so that `rmm sim` can serve the
// trees from inside the binary, on a machine that has nothing but rmm.
// Each folder keeps its LICENSE and a SOURCE.txt saying where the JSON came
// from and what was left out; the JSON files are unedited.
package redfishtrees

import (
	"embed"
	"io/fs"
)

//go:embed dell-poweredge-r750-idrac9 hpe-proliant-dl385-gen10plus-v2-ilo5 lenovo-thinksystem-sr670-v2-xcc supermicro-sys-821ge-tnhr dmtf-public-rackmount1
var files embed.FS

// Folders maps rmm's vendor names to the folder holding that vendor's tree.
var Folders = map[string]string{
	"dell":       "dell-poweredge-r750-idrac9",
	"hpe":        "hpe-proliant-dl385-gen10plus-v2-ilo5",
	"lenovo":     "lenovo-thinksystem-sr670-v2-xcc",
	"supermicro": "supermicro-sys-821ge-tnhr",
	"dmtf":       "dmtf-public-rackmount1",
}

// Tree returns one vendor's tree, rooted at the folder: the Redfish URI
// /redfish/v1/A/B is the file redfish/v1/A/B/index.json. ok is false for
// an unknown vendor.
func Tree(vendor string) (tree fs.FS, ok bool) {
	dir, ok := Folders[vendor]
	if !ok {
		return nil, false
	}
	sub, err := fs.Sub(files, dir)
	if err != nil { // cannot happen: dir is one of the embedded folders
		return nil, false
	}
	return sub, true
}
