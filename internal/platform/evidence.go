package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/internal/evidence"
)

// CatalogVersionJSON implements evidence.Catalogs: a published version's
// document as stored.
func (c *catalogs) CatalogVersionJSON(ctx context.Context, tenant grains.TenantID, version int) ([]byte, error) {
	if version < 1 {
		return nil, grains.Errorf(grains.CodeNotFound, "no catalog version %d", version)
	}
	cc, err := c.get(ctx, tenant, version)
	if errors.Is(err, errNoCatalog) {
		return nil, grains.Errorf(grains.CodeNotFound, "tenant %s has no published catalog version %d", tenant, version)
	}
	return cc.raw, err
}

// PolicyRulesJSON implements evidence.Policies: the rules of a version.
func (p *policies) PolicyRulesJSON(ctx context.Context, tenant grains.TenantID, version int) ([]byte, error) {
	pv, err := p.version(ctx, tenant, version)
	if err != nil {
		return nil, err
	}
	return json.Marshal(pv.Rules)
}

// evidenceSource implements dispatch.Evidence with a bundle builder.
type evidenceSource struct{ b *evidence.Builder }

func (e evidenceSource) EvidenceJSON(ctx context.Context, tenant grains.TenantID, quoteID string) ([]byte, error) {
	bundle, err := e.b.Build(ctx, tenant, quoteID)
	if err != nil {
		return nil, err
	}
	return json.Marshal(bundle)
}

// newEvidence builds quote evidence from the platform's truth store; an
// error when the store cannot read audit trails and chains.
func (p *Platform) newEvidence(cats *catalogs, pols *policies) (evidenceSource, error) {
	st, ok := p.Store.(evidence.Store)
	if !ok {
		return evidenceSource{}, fmt.Errorf("platform: the truth store %T reads no audit trails", p.Store)
	}
	return evidenceSource{b: &evidence.Builder{Store: st, Catalogs: cats, Policies: pols}}, nil
}
