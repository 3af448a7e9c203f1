package scaleout

import (
	"fmt"

	"github.com/mdpio/mdp/config"
)

// rereadable reports why the job's source cannot be read again to the same
// records, or nil when it can. A re-read (mdp ingest --reread, mdp run
// --resume) numbers each partition's records from 0 again, and workers drop
// as already read every record up to the numbers they had: a source whose
// second reading differs (a live feed; a paced generator, which stamps the
// wall clock) would have that many of its new records dropped. Recorded
// files (provider.replay) and the unpaced generator (provider.synthetic
// without a rate: its records follow from its seed alone) read the same
// records in the same order every time.
func rereadable(doc *config.Document) error {
	id := doc.Scaleout.Source
	for i := range doc.Nodes {
		n := &doc.Nodes[i]
		if n.ID != id {
			continue
		}
		switch {
		case n.Type == "provider.replay":
			return nil
		case n.Type == "provider.synthetic" && n.Params != nil && n.Params.Float("rate") == 0:
			return nil
		case n.Type == "provider.synthetic":
			return fmt.Errorf("source %q is a paced provider.synthetic (rate set): its records carry the wall clock, so a re-read would not give the same records and the workers would drop new ones as read; "+
				"a re-read (mdp ingest --reread, mdp run --resume) needs recorded input (provider.replay) or provider.synthetic without a rate", id)
		}
		return fmt.Errorf("source %q (%s) cannot be read again to the same records, so the workers would drop new ones as read; "+
			"a re-read (mdp ingest --reread, mdp run --resume) needs recorded input (provider.replay) or provider.synthetic without a rate", id, n.Type)
	}
	return fmt.Errorf("job %q has no source node %q", doc.Name, id)
}
