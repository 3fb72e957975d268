package cli

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// Output formats shared by every command that prints records.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatCSV   = "csv"
)

// checkFormat validates an -o value against the formats a command offers.
func checkFormat(got string, allowed ...string) error {
	for _, a := range allowed {
		if got == a {
			return nil
		}
	}
	return usageErrorf("unknown output format %q: use one of %s", got, strings.Join(allowed, ", "))
}

// bigTable is the row count above which writeTable streams through the
// standard library's text/tabwriter instead of tablewriter. tablewriter
// spends about 42 µs per row (width caches, merge and wrap machinery):
// 0.42 s for a 10,000-host `rmm list`, against a budget of 100 ms. Both
// paths print the same bytes (TestWriteTablePathsAgree).
const bigTable = 500

// writeTable prints an aligned, borderless table (like kubectl's): columns
// separated by two spaces, a header row in capitals, "-" for an empty cell,
// no trailing blanks. It is the same in a terminal and in a pipe, so awk and
// cut keep working.
func writeTable(w io.Writer, header []string, rows [][]string) error {
	hdr := make([]string, len(header))
	for i, h := range header {
		hdr[i] = strings.ToUpper(h)
	}
	cells := make([][]string, len(rows))
	for i, r := range rows {
		cells[i] = make([]string, len(r))
		for j, c := range r {
			if c == "" {
				c = "-"
			}
			cells[i][j] = c
		}
	}
	if len(rows) > bigTable {
		return writeTabwriter(w, hdr, cells)
	}
	return writeTablewriter(w, hdr, cells)
}

func writeTablewriter(w io.Writer, header []string, rows [][]string) error {
	var buf bytes.Buffer
	t := tablewriter.NewTable(&buf,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders: tw.BorderNone,
			Symbols: tw.NewSymbols(tw.StyleNone),
			Settings: tw.Settings{
				Separators: tw.Separators{BetweenRows: tw.Off, BetweenColumns: tw.Off},
				Lines:      tw.Lines{ShowHeaderLine: tw.Off},
			},
		})),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
		tablewriter.WithPadding(tw.Padding{Left: "", Right: "  ", Overwrite: true}),
	)
	t.Header(toAny(header)...)
	for _, r := range rows {
		if err := t.Append(toAny(r)...); err != nil {
			return err
		}
	}
	if err := t.Render(); err != nil {
		return err
	}
	var out strings.Builder
	for _, line := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		out.WriteString(strings.TrimRight(line, " "))
		out.WriteByte('\n')
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// writeTabwriter is writeTable's path for big tables. Cells never contain
// tabs or newlines here (host names, IPs, labels are validated), so
// tabwriter's cell syntax is safe; widths are counted in runes, which is
// the display width for every character the inventory allows.
func writeTabwriter(w io.Writer, header []string, rows [][]string) error {
	var buf bytes.Buffer
	tab := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	write := func(cells []string) {
		// A terminating tab makes the last column a cell too, so it is
		// padded like the others; the padding is trimmed below.
		_, _ = io.WriteString(tab, strings.Join(cells, "\t")+"\t\n")
	}
	write(header)
	for _, r := range rows {
		write(r)
	}
	if err := tab.Flush(); err != nil {
		return err
	}
	var out strings.Builder
	out.Grow(buf.Len())
	for _, l := range strings.SplitAfter(buf.String(), "\n") {
		if l == "" {
			continue
		}
		out.WriteString(strings.TrimRight(l, " \n"))
		out.WriteByte('\n')
	}
	_, err := io.WriteString(w, out.String())
	return err
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// writeCSV prints a header and rows as RFC 4180 CSV.
func writeCSV(w io.Writer, header []string, rows [][]string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	if err := cw.WriteAll(rows); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// writeJSON prints v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	return nil
}

// writeRecords prints rows in the chosen format; JSON uses v.
func writeRecords(w io.Writer, format string, header []string, rows [][]string, v any) error {
	switch format {
	case FormatJSON:
		return writeJSON(w, v)
	case FormatCSV:
		return writeCSV(w, header, rows)
	default:
		return writeTable(w, header, rows)
	}
}
