package catalogbook

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/grainline/grainline/grains"
	"github.com/grainline/grainline/grains/catalog"
)

// Command wire names.
const (
	CmdAllocate    = "allocate"
	CmdActivate    = "activate"
	CmdCreateDraft = "createDraft"
	CmdUpdateDraft = "updateDraft"
	CmdValidate    = "validate"
	CmdPublish     = "publish"
)

// Allocate numbers the next version (index).
type Allocate struct{}

// Activate makes a published version the active one (index). The caller
// checks that the version is published.
type Activate struct {
	Version int `json:"version"`
}

// CreateDraft creates the version as a draft with Catalog (version).
type CreateDraft struct {
	Catalog *catalog.Catalog `json:"catalog"`
}

// UpdateDraft replaces the content of a draft or validated version; the
// version is a draft again.
type UpdateDraft struct {
	Catalog *catalog.Catalog `json:"catalog"`
}

// Validate checks a draft: with no problems it becomes validated, else the
// reply lists every problem.
type Validate struct{}

// Publish publishes a validated version; it never changes again.
type Publish struct{}

// CommandName implements grains.Command.
func (Allocate) CommandName() string { return CmdAllocate }

// CommandName implements grains.Command.
func (Activate) CommandName() string { return CmdActivate }

// CommandName implements grains.Command.
func (CreateDraft) CommandName() string { return CmdCreateDraft }

// CommandName implements grains.Command.
func (UpdateDraft) CommandName() string { return CmdUpdateDraft }

// CommandName implements grains.Command.
func (Validate) CommandName() string { return CmdValidate }

// CommandName implements grains.Command.
func (Publish) CommandName() string { return CmdPublish }

// DecodeCommand turns a wire command into a typed Command. Catalog contents
// are decoded strictly: a misspelt field is a bad request, not silently
// dropped.
func DecodeCommand(name string, payload []byte) (grains.Command, error) {
	var cmd grains.Command
	var err error
	switch name {
	case CmdAllocate:
		var c Allocate
		err = grains.DecodePayload(name, payload, &c, true)
		cmd = c
	case CmdActivate:
		var c Activate
		err = grains.DecodePayload(name, payload, &c, true)
		cmd = c
	case CmdCreateDraft:
		var c CreateDraft
		err = grains.DecodePayload(name, payload, &c, true)
		cmd = c
	case CmdUpdateDraft:
		var c UpdateDraft
		err = grains.DecodePayload(name, payload, &c, true)
		cmd = c
	case CmdValidate:
		var c Validate
		err = grains.DecodePayload(name, payload, &c, true)
		cmd = c
	case CmdPublish:
		var c Publish
		err = grains.DecodePayload(name, payload, &c, true)
		cmd = c
	default:
		return nil, grains.Errorf(grains.CodeBadRequest, "unknown catalog command %q", name)
	}
	if err != nil {
		return nil, err
	}
	return cmd, nil
}

// VersionAllocated: the index numbered a new version.
type VersionAllocated struct {
	Version int `json:"version"`
}

// VersionActivated: new quotes use Version from now on.
type VersionActivated struct {
	Version  int       `json:"version"`
	Previous int       `json:"previous"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
}

// DraftCreated: a version exists as a draft.
type DraftCreated struct {
	Version int              `json:"version"`
	Catalog *catalog.Catalog `json:"catalog"`
	By      string           `json:"by"`
	At      time.Time        `json:"at"`
}

// DraftUpdated: a draft's content was replaced.
type DraftUpdated struct {
	Version int              `json:"version"`
	Catalog *catalog.Catalog `json:"catalog"`
	At      time.Time        `json:"at"`
}

// DraftValidated: the draft has no problems.
type DraftValidated struct {
	Version int       `json:"version"`
	At      time.Time `json:"at"`
}

// VersionPublished: the version is published and never changes again.
type VersionPublished struct {
	Version int       `json:"version"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
}

// EventName implements grains.Event.
func (VersionAllocated) EventName() string { return "CatalogVersionAllocated" }

// EventName implements grains.Event.
func (VersionActivated) EventName() string { return "CatalogVersionActivated" }

// EventName implements grains.Event.
func (DraftCreated) EventName() string { return "CatalogDraftCreated" }

// EventName implements grains.Event.
func (DraftUpdated) EventName() string { return "CatalogDraftUpdated" }

// EventName implements grains.Event.
func (DraftValidated) EventName() string { return "CatalogDraftValidated" }

// EventName implements grains.Event.
func (VersionPublished) EventName() string { return "CatalogVersionPublished" }

// DecodeEvent decodes an event from its wire name and JSON payload.
func DecodeEvent(name string, payload []byte) (grains.Event, error) {
	switch name {
	case VersionAllocated{}.EventName():
		return decodeEvent[VersionAllocated](name, payload)
	case VersionActivated{}.EventName():
		return decodeEvent[VersionActivated](name, payload)
	case DraftCreated{}.EventName():
		return decodeEvent[DraftCreated](name, payload)
	case DraftUpdated{}.EventName():
		return decodeEvent[DraftUpdated](name, payload)
	case DraftValidated{}.EventName():
		return decodeEvent[DraftValidated](name, payload)
	case VersionPublished{}.EventName():
		return decodeEvent[VersionPublished](name, payload)
	}
	return nil, fmt.Errorf("catalogbook: unknown event %q", name)
}

func decodeEvent[E grains.Event](name string, payload []byte) (grains.Event, error) {
	var e E
	if err := json.Unmarshal(payload, &e); err != nil {
		return nil, fmt.Errorf("catalogbook: decode %s: %w", name, err)
	}
	return e, nil
}
