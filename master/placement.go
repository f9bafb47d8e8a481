package master

import (
	"cmp"
	"net"
	"slices"
)

// Failure domains, as HDFS places replicas across racks: the copies of a
// chunk go to workers in different zones while there are enough zones,
// then to different hosts, then to any worker that holds none.

// Label keys of HealthCheckResponse.labels that name a worker's domain.
const (
	LabelZone = "zone"
	LabelHost = "host"
)

// maxLabelBytes bounds a label value a worker sends: longer ones are cut,
// so a hostile worker cannot grow the master's maps.
const maxLabelBytes = 256

// Domain is a worker's failure domain.
type Domain struct {
	Zone string // "" when the worker names none: all such share one
	Host string // the host label, or the address's host
}

// DomainOf is the domain of the worker at addr whose health gave labels.
func DomainOf(addr string, labels map[string]string) Domain {
	d := Domain{Zone: cut(labels[LabelZone]), Host: cut(labels[LabelHost])}
	if d.Host == "" {
		d.Host = addr
		if h, _, err := net.SplitHostPort(addr); err == nil {
			d.Host = h
		}
	}
	return d
}

func cut(s string) string { return s[:min(len(s), maxLabelBytes)] }

// Candidate is a worker that may take a copy.
type Candidate struct {
	Addr   string
	Domain Domain
	// Load orders candidates of the same rank: the least loaded first
	// (bytes stored, or tasks running).
	Load int64
}

// PlaceReplicas chooses up to n of candidates for new copies of a chunk
// whose copies are in the domains held (one per copy). Each pick prefers a
// zone no copy is in yet, then a host no copy is on, then the least
// loaded, then the lowest address; a candidate is picked once. Fewer than
// n come back when there are fewer candidates. Candidates holding a copy
// already must not be passed.
func PlaceReplicas(n int, held []Domain, candidates []Candidate) []string {
	zones := map[string]bool{}
	hosts := map[string]bool{}
	for _, d := range held {
		zones[d.Zone], hosts[d.Host] = true, true
	}
	left := slices.Clone(candidates)
	var picked []string
	for range n {
		if len(left) == 0 {
			break
		}
		rank := func(c Candidate) (int, int) {
			return b2i(zones[c.Domain.Zone]), b2i(hosts[c.Domain.Host])
		}
		best := slices.MinFunc(left, func(a, b Candidate) int {
			az, ah := rank(a)
			bz, bh := rank(b)
			return cmp.Or(cmp.Compare(az, bz), cmp.Compare(ah, bh), cmp.Compare(a.Load, b.Load), cmp.Compare(a.Addr, b.Addr))
		})
		picked = append(picked, best.Addr)
		zones[best.Domain.Zone], hosts[best.Domain.Host] = true, true
		left = slices.DeleteFunc(left, func(c Candidate) bool { return c.Addr == best.Addr })
	}
	return picked
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
