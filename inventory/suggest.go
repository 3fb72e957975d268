package inventory

import "strings"

// suggest returns the candidate closest to s by edit distance, if it is
// close enough to be a likely typo ("did you mean"), else "". Ties go to
// the earliest candidate, which is the inventory's order.
func suggest(s string, candidates []string) string {
	limit := len(s) / 3
	if limit < 1 {
		limit = 1
	}
	if limit > 3 {
		limit = 3
	}
	best, bestD := "", limit+1
	for _, c := range candidates {
		if c == s || abs(len(c)-len(s)) >= bestD {
			continue
		}
		if d := editDistance(s, c, bestD); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" && len(s) >= 3 {
		// A truncated word ("panic" for "panicked") is a near miss too.
		for _, c := range candidates {
			if strings.HasPrefix(c, s) && len(c)-len(s) <= 4 {
				return c
			}
		}
	}
	return best
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// editDistance is the Levenshtein distance between a and b, with adjacent
// transpositions counted as one edit (db21 for db12). It stops early and
// returns max once the distance is known to be at least max.
func editDistance(a, b string, max int) int {
	if len(a) > 64 || len(b) > 64 {
		// Names are short; long strings are never a typo of each other
		// worth the quadratic cost.
		return max
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
			rowMin = min(rowMin, v)
		}
		if rowMin >= max {
			return max
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(b)], max)
}
