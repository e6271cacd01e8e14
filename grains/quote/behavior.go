package quote

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/approval"
	"github.com/grainline/grainline/grains/catalog"
	"github.com/grainline/grainline/grains/pricing"
)

// Behavior is the quote grain kind as the runtime drives it, with the
// default Options. Decide needs env.Catalog for create (optional) and
// addLine (required).
var Behavior = New(Options{})

// Options are the quote grain's switches. They are fixed for the life of
// the process; the zero value is the default.
type Options struct {
	// RequireDocument makes accept require a document attached to the
	// current revision and the caller's documentSha256 to match it (see
	// the package doc). Off by default for now.
	RequireDocument bool
	// PolicyFor looks up the tenant's approval policy whenever the runtime
	// did not pass one in env.Policy. It must be pure: the same tenant gives
	// the same policy for the life of the process (nil for a tenant without
	// one). nil looks up nothing.
	PolicyFor func(grains.TenantID) *approval.Policy
}

// New returns the quote grain kind with opts.
func New(opts Options) grains.Behavior[State] {
	return grains.Behavior[State]{
		Kind: grains.KindQuote,
		Decide: func(s State, cmd grains.Command, env grains.Env) ([]grains.Event, error) {
			if env.Policy == nil && opts.PolicyFor != nil {
				env.Policy = opts.PolicyFor(env.Tenant)
			}
			return decide(s, cmd, env, opts)
		},
		Apply:         Apply,
		DecodeCommand: DecodeCommand,
		Exists:        Exists,
		// A quote decides against the catalog version it was created with.
		CatalogVersion: func(s State) int { return s.CatalogVersion },
	}
}

// commandRoles says who may send each command.
var commandRoles = map[string]string{
	CmdCreate: RoleSales, CmdAddLine: RoleSales, CmdRemoveLine: RoleSales, CmdPrice: RoleSales,
	CmdSubmit: RoleSales, CmdApprove: RoleApprover, CmdReject: RoleApprover, CmdAccept: RoleSales,
	CmdCancel: RoleSales, CmdSetLineDiscount: RoleSales, CmdSetQuoteDiscount: RoleSales, CmdClearQuoteDiscount: RoleSales,
	CmdExpire: RoleSystem, CmdAttachDocument: RoleSales, CmdSetCharacteristics: RoleSales,
}

// allowedIn says in which statuses each command (other than create) may run.
// Material changes after submission start a new revision (see revised).
var allowedIn = map[string][]Status{
	CmdAddLine:    {StatusInProgress, StatusPending, StatusApproved, StatusRejected},
	CmdRemoveLine: {StatusInProgress, StatusPending, StatusApproved, StatusRejected},
	CmdPrice:      {StatusInProgress},
	CmdSubmit:     {StatusInProgress},
	CmdApprove:    {StatusPending},
	CmdReject:     {StatusPending},
	CmdAccept:     {StatusApproved},
	CmdCancel:     {StatusInProgress, StatusPending, StatusApproved},

	CmdSetLineDiscount:    {StatusInProgress, StatusPending, StatusApproved, StatusRejected},
	CmdSetQuoteDiscount:   {StatusInProgress, StatusPending, StatusApproved, StatusRejected},
	CmdClearQuoteDiscount: {StatusInProgress, StatusPending, StatusApproved, StatusRejected},
	CmdExpire:             {StatusInProgress, StatusPending, StatusApproved},
	CmdAttachDocument:     {StatusApproved},
	CmdSetCharacteristics: {StatusInProgress, StatusPending, StatusApproved, StatusRejected},
}

// expireIsNoOp lists the statuses in which expire decides no events: the
// quote was decided (or expired) before its timer fired.
var expireIsNoOp = []Status{StatusAccepted, StatusRejected, StatusCancelled, StatusExpired}

// Decide returns the events cmd produces against s, with the default
// Options. Checks run in this order: role (CodeForbidden), existence
// (CodeNotFound; CodeAlreadyExists for create), the revision and price hash
// approve and reject name (CodeStaleRevision), status
// (CodeInvalidTransition), validity (CodeQuoteExpired), then the command's
// meaning (CodeValidation, CodeStaleRevision, the document codes).
func Decide(s State, cmd grains.Command, env grains.Env) ([]grains.Event, error) {
	return decide(s, cmd, env, Options{})
}

func decide(s State, cmd grains.Command, env grains.Env, opts Options) ([]grains.Event, error) {
	if cmd == nil {
		return nil, grains.Errorf(grains.CodeBadRequest, "no quote command")
	}
	name := cmd.CommandName()
	role, known := commandRoles[name]
	if !known {
		return nil, grains.Errorf(grains.CodeBadRequest, "unknown quote command %q", name)
	}
	if role == RoleApprover {
		// Any approval authority will do here; the level is checked
		// against the quote below.
		if approval.Authority(env.Roles) < 1 {
			return nil, grains.Errorf(grains.CodeForbidden, "%s requires role approver or approver:N", name)
		}
	} else if err := grains.RequireRole(env, name, role); err != nil {
		return nil, err
	}
	if c, ok := cmd.(Create); ok {
		return decideCreate(s, c, env)
	}
	if !Exists(s) {
		return nil, grains.NotFound(grains.KindQuote, env.ID, name)
	}
	if name == CmdExpire && slices.Contains(expireIsNoOp, s.Status) {
		return nil, nil // a late or repeated timer
	}
	if name == CmdAccept && s.Status == StatusExpired {
		return nil, grains.Errorf(grains.CodeQuoteExpired, "%s: quote %s expired at %s", name, s.ID, s.ValidUntil.UTC().Format(time.RFC3339))
	}
	switch c := cmd.(type) {
	case Approve:
		if err := checkStale(s, name, c.Revision, c.PriceHash); err != nil {
			return nil, err
		}
	case Reject:
		if err := checkStale(s, name, c.Revision, c.PriceHash); err != nil {
			return nil, err
		}
	case AttachDocument:
		if s.Status == StatusAccepted && s.Document != nil && s.Document.Revision == c.Revision && s.Document.SHA256 == c.SHA256 {
			return nil, nil // the document the customer accepted, again
		}
	}
	if !statusAllows(s.Status, name) {
		return nil, grains.InvalidTransition(grains.KindQuote, s.ID, string(s.Status), name, "")
	}
	if name != CmdExpire && s.pastValidity(env.Now) {
		// The expire timer may not have fired yet.
		return nil, grains.Errorf(grains.CodeQuoteExpired, "%s: quote %s expired at %s", name, s.ID, s.ValidUntil.UTC().Format(time.RFC3339))
	}
	if (name == CmdApprove || name == CmdReject || name == CmdAccept) && s.Price == nil {
		return nil, grains.Errorf(grains.CodeInternal, "%s: quote %s is %s but has no price", name, s.ID, s.Status)
	}
	now := env.Now.UTC()
	if slices.Contains(materialChanges, name) {
		evs, err := decideChange(s, cmd, env)
		if err != nil {
			return nil, err
		}
		return revised(s, name, env, evs), nil
	}
	switch c := cmd.(type) {
	case PriceQuote:
		if len(s.Lines) > 0 && s.Price == nil {
			if err := checkConfiguration(CmdPrice, s, env.Catalog); err != nil {
				return nil, err
			}
		}
		return decidePrice(s, now)
	case Submit:
		if s.Price == nil {
			return nil, grains.InvalidTransition(grains.KindQuote, s.ID, string(s.Status), name, "the quote is not priced: price it first")
		}
		if err := checkConfiguration(CmdSubmit, s, env.Catalog); err != nil {
			return nil, err
		}
		return decideSubmit(s, env, now)
	case Approve:
		return decideApprove(s, c, env, now)
	case Reject:
		return decideReject(s, c, env, now)
	case Accept:
		return decideAccept(s, c, env, opts, now)
	case AttachDocument:
		return decideAttach(s, c, env, now)
	case Expire:
		return []grains.Event{Expired{QuoteID: s.ID, Status: StatusExpired, ValidUntil: s.ValidUntil, ExpiredBy: env.Actor, ExpiredAt: now}}, nil
	case Cancel:
		return []grains.Event{Cancelled{QuoteID: s.ID, Status: StatusCancelled, Reason: c.Reason, CancelledBy: env.Actor, CancelledAt: now}}, nil
	}
	return nil, grains.Errorf(grains.CodeBadRequest, "quote command %q has unexpected type %T", name, cmd)
}

// decideChange decides a material change against the current revision;
// the caller starts a new revision when s is past submission.
func decideChange(s State, cmd grains.Command, env grains.Env) ([]grains.Event, error) {
	name := cmd.CommandName()
	switch c := cmd.(type) {
	case AddLine:
		return decideAddLine(s, c, env)
	case RemoveLine:
		if s.line(c.LineID) < 0 {
			return nil, violation(CmdRemoveLine, "/lineId", "unknown", fmt.Sprintf("quote %s has no line %q", s.ID, c.LineID))
		}
		return []grains.Event{LineRemoved{QuoteID: s.ID, Status: s.Status, LineID: c.LineID}}, nil
	case SetLineDiscount:
		i := s.line(c.LineID)
		if i < 0 {
			return nil, violation(CmdSetLineDiscount, "/lineId", "unknown", fmt.Sprintf("quote %s has no line %q", s.ID, c.LineID))
		}
		d, err := c.discount().record(s.Currency)
		if err != nil {
			return nil, withCommand(CmdSetLineDiscount, err)
		}
		if t, ok := s.Terms[c.LineID]; ok && sameDiscount(t.Discount, d) {
			return nil, nil
		}
		return []grains.Event{LineDiscountSet{QuoteID: s.ID, Status: s.Status, LineID: c.LineID, Discount: *d}}, nil
	case SetQuoteDiscount:
		d, err := c.discount().record(s.Currency)
		if err != nil {
			return nil, withCommand(CmdSetQuoteDiscount, err)
		}
		if sameDiscount(s.Discount, d) {
			return nil, nil
		}
		return []grains.Event{DiscountSet{QuoteID: s.ID, Status: s.Status, Discount: *d}}, nil
	case ClearQuoteDiscount:
		if s.Discount == nil {
			return nil, nil
		}
		return []grains.Event{DiscountCleared{QuoteID: s.ID, Status: s.Status}}, nil
	case SetCharacteristics:
		return decideSetCharacteristics(s, c, env)
	}
	return nil, grains.Errorf(grains.CodeBadRequest, "quote command %q is not a material change", name)
}

func statusAllows(st Status, command string) bool {
	for _, a := range allowedIn[command] {
		if a == st {
			return true
		}
	}
	return false
}

func decideCreate(s State, c Create, env grains.Env) ([]grains.Event, error) {
	if Exists(s) {
		return nil, grains.Errorf(grains.CodeAlreadyExists, "quote %s already exists", s.ID)
	}
	if env.ID == "" {
		return nil, grains.Errorf(grains.CodeValidation, "create: the quote has no id")
	}
	version := 0
	if env.Catalog != nil {
		if !env.Catalog.Sells(c.Currency) {
			return nil, violation(CmdCreate, "/currency", "not_sold", fmt.Sprintf("the catalog has no prices in %s", c.Currency))
		}
		version = env.Catalog.Version
	}
	now := env.Now.UTC()
	validUntil := now.AddDate(0, 0, DefaultValidForDays)
	switch {
	case c.ValidUntil != nil:
		validUntil = c.ValidUntil.UTC()
		if !validUntil.After(now) {
			return nil, violation(CmdCreate, "/validUntil", "past", fmt.Sprintf("validUntil %s is not in the future", validUntil.Format(time.RFC3339)))
		}
	case c.ValidForDays > 0:
		validUntil = now.AddDate(0, 0, c.ValidForDays)
	}
	return []grains.Event{Created{
		QuoteID: env.ID, Status: StatusInProgress, Tenant: env.Tenant,
		CustomerID: c.CustomerID, CustomerName: c.CustomerName, Currency: c.Currency,
		CatalogVersion: version, TermMonths: c.TermMonths, CustomerSegment: c.CustomerSegment,
		CreatedBy: env.Actor, CreatedAt: now, ValidUntil: validUntil.Truncate(time.Microsecond),
	}}, nil
}

func decideAddLine(s State, c AddLine, env grains.Env) ([]grains.Event, error) {
	if env.Catalog == nil {
		return nil, grains.Errorf(grains.CodeValidation, "addLine: tenant %s has no published catalog", env.Tenant)
	}
	off, ok := env.Catalog.Offering(c.OfferingID)
	if !ok {
		return nil, violation(CmdAddLine, "/offeringId", "unknown", fmt.Sprintf("offering %q is not in catalog version %d", c.OfferingID, env.Catalog.Version))
	}
	p, ok := off.Price(s.Currency)
	if !ok {
		return nil, violation(CmdAddLine, "/offeringId", "no_price", fmt.Sprintf("offering %q has no price in %s", c.OfferingID, s.Currency))
	}
	if c.ParentLineID != "" && s.line(c.ParentLineID) < 0 {
		return nil, violation(CmdAddLine, "/parentLineId", catalog.CodeBundleChildUnknown, fmt.Sprintf("quote %s has no line %q", s.ID, c.ParentLineID))
	}
	values, err := configure(CmdAddLine, env.Catalog, off.ID, c.Characteristics)
	if err != nil {
		return nil, err
	}
	scale, _ := pricing.MinorUnits(s.Currency)
	in := pricing.Line{LineID: strconv.Itoa(s.LineSeq + 1), OfferingID: off.ID, Quantity: c.Quantity,
		UnitOneTime: p.OneTime, UnitMonthly: p.MonthlyRecurring, Tiers: p.Tiers,
		Characteristics: values, ParentLineID: c.ParentLineID}
	res, err := pricing.Price([]pricing.Line{in}, s.Currency)
	if err != nil {
		return nil, withCommand(CmdAddLine, err)
	}
	return []grains.Event{LineAdded{QuoteID: s.ID, Status: s.Status, CatalogVersion: env.Catalog.Version,
		Line: pricedLine(in, off.Name, res.Lines[0], scale), Tier: res.Lines[0].Tier,
		ListOneTime: pricing.FormatUnit(p.OneTime, scale), ListMonthly: pricing.FormatUnit(p.MonthlyRecurring, scale),
		Tiers: append([]catalog.Tier(nil), p.Tiers...)}}, nil
}

// withCommand keeps a domain error's code and violations and names the
// command in its message.
func withCommand(command string, err error) error {
	var de *grains.Error
	if errors.As(err, &de) {
		out := *de
		out.Message = command + ": " + de.Message
		return &out
	}
	return fmt.Errorf("%s: %w", command, err)
}

func decidePrice(s State, now time.Time) ([]grains.Event, error) {
	if len(s.Lines) == 0 {
		return nil, grains.Errorf(grains.CodeValidation, "price: quote %s has no lines", s.ID)
	}
	if s.Price != nil {
		return nil, nil // already priced, and lines have not changed since
	}
	in, err := Input(s)
	if err != nil {
		return nil, withCommand(CmdPrice, err)
	}
	res, err := pricing.Evaluate(in)
	if err != nil {
		return nil, withCommand(CmdPrice, err)
	}
	lines := make([]grains.Line, len(in.Lines))
	for i := range in.Lines {
		lines[i] = pricedLine(in.Lines[i], s.Lines[i].Name, res.Lines[i], res.Scale)
	}
	v := res.View()
	return []grains.Event{Priced{QuoteID: s.ID, Status: s.Status, Currency: s.Currency, Lines: lines,
		SubtotalOneTime: v.SubtotalOneTime, SubtotalMonthly: v.SubtotalMonthly,
		DiscountOneTime: v.DiscountOneTime, DiscountMonthly: v.DiscountMonthly,
		OneTimeTotal: v.OneTimeTotal, MonthlyTotal: v.MonthlyTotal,
		Algorithm: v.Algorithm, Trace: v.Trace, Hash: res.Hash, PricedAt: now}}, nil
}

// pricedLine is a line as the quote and its order show it: the unit prices
// of the line's tier and its totals net of the line discount.
func pricedLine(in pricing.Line, name string, r pricing.LineResult, scale int32) grains.Line {
	return grains.Line{
		LineID: in.LineID, OfferingID: in.OfferingID, Name: name, Quantity: in.Quantity,
		UnitOneTime: pricing.FormatUnit(r.UnitOneTime, scale), UnitMonthly: pricing.FormatUnit(r.UnitMonthly, scale),
		OneTimeTotal: pricing.Format(r.OneTimeTotal, scale), MonthlyTotal: pricing.Format(r.MonthlyTotal, scale),
		Characteristics: grains.CloneValues(in.Characteristics), ParentLineID: in.ParentLineID,
	}
}

func violation(command, pointer, code, message string) error {
	return grains.Violations{{Pointer: pointer, Code: code, Message: message}}.Err(command)
}

// Apply folds one event into s. Events it does not know leave s unchanged.
func Apply(s State, ev grains.Event) State {
	switch e := ev.(type) {
	case Created:
		s = State{ID: e.QuoteID, Tenant: e.Tenant, Status: e.Status, CustomerID: e.CustomerID,
			CustomerName: e.CustomerName, Currency: e.Currency, CatalogVersion: e.CatalogVersion,
			TermMonths: e.TermMonths, CustomerSegment: e.CustomerSegment, Revision: 1,
			Lines: []grains.Line{}, CreatedBy: e.CreatedBy, CreatedAt: e.CreatedAt, ValidUntil: e.ValidUntil}
	case LineAdded:
		s.Lines = append(grains.CloneLines(s.Lines), e.Line)
		s.LineSeq++
		s.CatalogVersion = e.CatalogVersion
		s.Price = nil
		if e.ListOneTime != "" || e.ListMonthly != "" {
			s.Terms = cloneTerms(s.Terms)
			s.Terms[e.Line.LineID] = LineTerms{ListOneTime: e.ListOneTime, ListMonthly: e.ListMonthly, Tiers: e.Tiers}
		}
	case LineDiscountSet:
		s.Terms = cloneTerms(s.Terms)
		t, ok := s.Terms[e.LineID]
		if !ok {
			// A line recorded before terms existed: its unit prices are
			// its list prices.
			for _, l := range s.Lines {
				if l.LineID == e.LineID {
					t = LineTerms{ListOneTime: l.UnitOneTime, ListMonthly: l.UnitMonthly}
				}
			}
		}
		d := e.Discount
		t.Discount = &d
		s.Terms[e.LineID] = t
		s.Price = nil
	case DiscountSet:
		d := e.Discount
		s.Discount, s.Price = &d, nil
	case DiscountCleared:
		s.Discount, s.Price = nil, nil
	case CharacteristicsSet:
		s.Lines = grains.CloneLines(s.Lines)
		for i := range s.Lines {
			if s.Lines[i].LineID == e.LineID {
				s.Lines[i].Characteristics = grains.CloneValues(e.Characteristics)
			}
		}
		s.Price = nil
	case LineRemoved:
		lines := make([]grains.Line, 0, len(s.Lines))
		for _, l := range s.Lines {
			if l.LineID != e.LineID {
				lines = append(lines, l)
			}
		}
		s.Lines, s.Price = lines, nil
		if _, ok := s.Terms[e.LineID]; ok {
			s.Terms = cloneTerms(s.Terms)
			delete(s.Terms, e.LineID)
		}
	case Priced:
		s.Lines = grains.CloneLines(e.Lines)
		s.Price = &PriceSummary{SubtotalOneTime: e.SubtotalOneTime, SubtotalMonthly: e.SubtotalMonthly,
			DiscountOneTime: e.DiscountOneTime, DiscountMonthly: e.DiscountMonthly,
			OneTimeTotal: e.OneTimeTotal, MonthlyTotal: e.MonthlyTotal,
			Algorithm: e.Algorithm, Trace: e.Trace, Hash: e.Hash, PricedAt: e.PricedAt}
	case Submitted:
		s.Status, s.SubmittedBy, s.SubmittedAt = e.Status, e.SubmittedBy, timePtr(e.SubmittedAt)
		s.PolicyVersion, s.RequiredLevel, s.Approvals = e.PolicyVersion, e.RequiredLevel, nil
		s.ApprovalRules = append([]approval.Match(nil), e.Rules...)
		if e.Status == StatusPending && e.RequiredLevel == 0 {
			s.RequiredLevel = 1 // submitted before approval policies: one approval
		}
		if e.Status == StatusApproved {
			s.ApprovedPriceHash = e.PriceHash // needs no approval
		}
	case Approved:
		level := e.Level
		if level == 0 {
			level = s.nextLevel() // approved before approval levels
		}
		s.Approvals = append(append([]Approval(nil), s.Approvals...), Approval{Level: level, ApprovedBy: e.ApprovedBy,
			ApprovedAt: e.ApprovedAt, PolicyVersion: e.PolicyVersion, Revision: e.Revision, PriceHash: e.PriceHash})
		s.Status = e.Status
		if e.Status == StatusApproved {
			s.ApprovedBy, s.ApprovedAt, s.ApprovedPriceHash = e.ApprovedBy, timePtr(e.ApprovedAt), e.PriceHash
		}
	case Rejected:
		s.Status, s.RejectedBy, s.RejectedAt, s.RejectedReason = e.Status, e.RejectedBy, timePtr(e.RejectedAt), e.Reason
	case Accepted:
		s.Status, s.AcceptedBy, s.AcceptedAt, s.OrderID = StatusAccepted, e.AcceptedBy, timePtr(e.AcceptedAt), e.OrderID
		s.Acceptance = &Acceptance{AcceptedBy: e.AcceptedBy, Channel: e.Channel, AcceptedAt: e.AcceptedAt,
			Revision: e.Revision, DocumentSHA256: e.DocumentSHA256, PriceHash: e.PriceHash}
		if s.Acceptance.Revision == 0 {
			s.Acceptance.Revision = s.revision() // accepted before revisions were recorded
		}
	case Revised:
		s = s.revise(e)
	case DocumentAttached:
		s.Document = &Document{Revision: e.Revision, SHA256: e.SHA256, ArtifactID: e.ArtifactID,
			MediaType: e.MediaType, AttachedBy: e.AttachedBy, AttachedAt: e.AttachedAt}
	case Expired:
		s.Status, s.ExpiredAt = e.Status, timePtr(e.ExpiredAt)
	case Cancelled:
		s.Status, s.CancelledBy, s.CancelledAt, s.CancelReason = e.Status, e.CancelledBy, timePtr(e.CancelledAt), e.Reason
	}
	return s
}

func timePtr(t time.Time) *time.Time { return &t }

// WithPolicies is New(Options{PolicyFor: policyFor}): Behavior with the
// tenant's approval policy looked up by policyFor whenever the runtime did
// not pass one in env.Policy.
func WithPolicies(policyFor func(grains.TenantID) *approval.Policy) grains.Behavior[State] {
	return New(Options{PolicyFor: policyFor})
}
