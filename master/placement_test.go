package master_test

import (
	"slices"
	"testing"

	"github.com/videoshard/videoshard/master"
)

func TestPlaceReplicas(t *testing.T) {
	cand := func(addr, zone, host string, load int64) master.Candidate {
		return master.Candidate{Addr: addr, Domain: master.DomainOf(addr, map[string]string{"zone": zone, "host": host}), Load: load}
	}
	dom := func(zone, host string) master.Domain { return master.Domain{Zone: zone, Host: host} }
	tests := []struct {
		name  string
		n     int
		held  []master.Domain
		cands []master.Candidate
		want  []string
	}{
		{"another zone first, however loaded", 1, []master.Domain{dom("a", "h1")},
			[]master.Candidate{cand("w2:1", "a", "h2", 0), cand("w3:1", "b", "h3", 900)}, []string{"w3:1"}},
		{"then another host", 1, []master.Domain{dom("a", "h1")},
			[]master.Candidate{cand("w2:1", "a", "h1", 0), cand("w3:1", "a", "h3", 900)}, []string{"w3:1"}},
		{"then the least loaded", 1, []master.Domain{dom("a", "h1")},
			[]master.Candidate{cand("w2:1", "a", "h1", 5), cand("w3:1", "a", "h1", 1)}, []string{"w3:1"}},
		{"ties by address", 1, nil,
			[]master.Candidate{cand("w3:1", "", "h", 0), cand("w2:1", "", "h", 0)}, []string{"w2:1"}},
		{"each pick counts for the next", 2, []master.Domain{dom("a", "h1")},
			[]master.Candidate{cand("b1:1", "b", "h2", 0), cand("b2:1", "b", "h3", 0), cand("a2:1", "a", "h4", 0), cand("c1:1", "c", "h5", 7)},
			[]string{"b1:1", "c1:1"}},
		{"zones run out, hosts next", 3, []master.Domain{dom("a", "h1")},
			[]master.Candidate{cand("x:1", "a", "h1", 0), cand("y:1", "b", "h2", 0), cand("z:1", "b", "h2", 0), cand("u:1", "a", "h3", 0)},
			[]string{"y:1", "u:1", "x:1"}},
		{"fewer candidates than copies wanted", 3, []master.Domain{dom("a", "h1")},
			[]master.Candidate{cand("w2:1", "b", "h2", 0)}, []string{"w2:1"}},
		{"none", 2, nil, nil, nil},
		{"no labels: the address's host", 1, []master.Domain{master.DomainOf("10.0.0.1:50061", nil)},
			[]master.Candidate{
				{Addr: "10.0.0.1:50062", Domain: master.DomainOf("10.0.0.1:50062", nil)},
				{Addr: "10.0.0.2:50061", Domain: master.DomainOf("10.0.0.2:50061", nil), Load: 100},
			}, []string{"10.0.0.2:50061"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := master.PlaceReplicas(tt.n, tt.held, tt.cands); !slices.Equal(got, tt.want) {
				t.Fatalf("PlaceReplicas = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDomainOfBoundsLabels(t *testing.T) {
	long := string(make([]byte, 10000))
	d := master.DomainOf("h:1", map[string]string{"zone": long, "host": long})
	if len(d.Zone) > 256 || len(d.Host) > 256 {
		t.Fatalf("labels kept at %d and %d bytes", len(d.Zone), len(d.Host))
	}
	if got := master.DomainOf("h:1", nil); got != (master.Domain{Host: "h"}) {
		t.Fatalf("unlabelled: %+v", got)
	}
}
