// Package fulfillment is the fulfillment worker: the "oms-fulfillment-worker"
// goka processor reads the task topic and, for every FulfillmentTaskRequested
// event, performs the task through the adapter of its task type (Inventory,
// Provisioning, Billing, Notification) and sends the outcome back to the
// order as a command (completeTask or failTask) on the order command topic.
//
// Every call towards an external system carries ExternalKey(tenant, taskId),
// the same on every retry and redelivery, so the system dedupes. The result
// command's idempotency key is derived from the task id and attempt, so a
// duplicated task event yields the same command twice, which the order grain
// dedupes.
//
// Outcomes are told apart: a business rejection (ErrRejected) fails the task
// with the system's reason; a technical failure (ErrTechnical) is retried
// with backoff; any other error, a timeout above all, is an unknown outcome
// and never a failure: before calling again the worker queries the system by
// the idempotency key and completes the task if the effect is there. After
// the task type's attempts the task is failed with ReasonRetriesExhausted
// and a cause (retries_exhausted, or unknown_outcome when the last call's
// outcome is unknown) for the order's fallout case. A worker stopped
// mid-task leaves the task uncommitted.
//
// Compensation tasks (releaseReservation, deprovision), which the order
// requests on cancellation, undo the effect recorded under the compensated
// task's external key.
//
// Asynchronous handoff (ADR 0022): when the system accepts a call and will
// report the result by callback (a Pending receipt), the worker sends
// awaitTask to the order instead of a result. When the callback does not
// come in time the order asks for a query (FulfillmentTaskQueryRequested):
// the worker asks the system by the idempotency key and completes the task
// (active), fails it (rejected), sends awaitTask again (pending), or calls
// again with the same key (absent).
package fulfillment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"

	"github.com/grainline/grainline/connectors/kafka"
	"github.com/grainline/grainline/connectors/truth"
	"github.com/grainline/grainline/streams/backoff"
	"github.com/grainline/grainline/streams/deadletter"
)

// EventTaskRequested is the event type the worker executes.
const EventTaskRequested = "FulfillmentTaskRequested"

// EventTaskQueryRequested asks the worker to query the external system
// about a task whose callback did not come; it is handled as a task
// execution that starts with a query.
const EventTaskQueryRequested = "FulfillmentTaskQueryRequested"

// The commands the worker sends to the order.
const (
	CommandComplete = "completeTask"
	CommandFail     = "failTask"
	// CommandAwait tells the order the system accepted the task and its
	// result comes by callback.
	CommandAwait = "awaitTask"
)

// AwaitingCallback is the awaitTask payload's Awaiting.
const AwaitingCallback = "callback"

// Config configures the worker.
type Config struct {
	// Brokers are the Kafka bootstrap brokers. Required.
	Brokers []string
	// Group is the consumer group. Default "oms-fulfillment-worker".
	Group goka.Group
	// Tasks is the input topic. Default "oms.fulfillment.tasks.v1".
	Tasks goka.Stream
	// OrderCommands is the output topic. Default "oms.order.commands.v1".
	OrderCommands goka.Stream
	// DeadLetter receives undecodable tasks. Default "grainline.deadletter.v1".
	DeadLetter goka.Stream
	// Retry is the backoff between attempts. Defaults: see backoff.Policy.
	Retry backoff.Policy
	// CallTimeout bounds one call of a task type without its own Timeout in
	// Policies. Default 30s.
	CallTimeout time.Duration
	// Attempts is the number of attempts of a task type without its own
	// Attempts in Policies. Default 5. An attempt is one call, preceded by a
	// query when the previous call's outcome was unknown; a query that fails
	// itself uses the attempt up.
	Attempts int
	// Policies are the retry policies per task type; zero fields take
	// Attempts and CallTimeout.
	Policies map[string]TaskPolicy
	// Records keeps the attempt records (the truth store). Nil records
	// nothing: a restarted worker then knows nothing of earlier calls and
	// relies on the systems' dedupe alone.
	Records truth.AttemptStore
	// Now is the clock for dead-letter and attempt records. Default
	// time.Now.
	Now func() time.Time
}

// TaskPolicy is the retry policy of one task type.
type TaskPolicy struct {
	// Attempts is the number of attempts (see Config.Attempts) before the
	// task fails with ReasonRetriesExhausted. Default Config.Attempts.
	Attempts int
	// Timeout bounds one call. Default Config.CallTimeout.
	Timeout time.Duration
}

// Policy returns the effective retry policy of a task type.
func (c Config) Policy(taskType string) TaskPolicy {
	p := c.Policies[taskType]
	if p.Attempts == 0 {
		p.Attempts = c.Attempts
	}
	if p.Timeout == 0 {
		p.Timeout = c.CallTimeout
	}
	return p
}

// ReasonRetriesExhausted is the failTask reason when a task ran out of
// attempts, whether its last outcome was a technical failure or unknown.
const ReasonRetriesExhausted = "retries exhausted"

// ErrConfig reports an invalid configuration.
var ErrConfig = errors.New("fulfillment: invalid config")

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Group == "" {
		c.Group = "oms-fulfillment-worker"
	}
	if c.Tasks == "" {
		c.Tasks = "oms.fulfillment.tasks.v1"
	}
	if c.OrderCommands == "" {
		c.OrderCommands = "oms.order.commands.v1"
	}
	if c.DeadLetter == "" {
		c.DeadLetter = "grainline.deadletter.v1"
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = 30 * time.Second
	}
	if c.Attempts == 0 {
		c.Attempts = 5
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Retry = c.Retry.WithDefaults()
	return c
}

// Validate checks c: brokers are set, the input is not an output, the call
// timeout is positive and the retry policy valid.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("%w: no brokers", ErrConfig)
	}
	if c.Tasks == c.OrderCommands || c.Tasks == c.DeadLetter {
		return fmt.Errorf("%w: input topic %q is also an output", ErrConfig, c.Tasks)
	}
	if c.CallTimeout <= 0 {
		return fmt.Errorf("%w: CallTimeout must be positive", ErrConfig)
	}
	if c.Attempts < 1 {
		return fmt.Errorf("%w: Attempts must be at least 1", ErrConfig)
	}
	for typ, p := range c.Policies {
		if p.Attempts < 0 || p.Timeout < 0 {
			return fmt.Errorf("%w: policy of %q has a negative field", ErrConfig, typ)
		}
	}
	if err := c.Retry.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Worker is the fulfillment worker.
type Worker struct {
	cfg   Config
	log   *slog.Logger
	ads   Adapters
	opts  []goka.ProcessorOption
	graph *goka.GroupGraph
}

// New builds a worker that handles "provision" tasks only, through prov.
// opts configure goka: pass kafka.Config.GokaOptions().
func New(cfg Config, prov Provisioner, log *slog.Logger, opts ...goka.ProcessorOption) (*Worker, error) {
	if prov == nil {
		return nil, fmt.Errorf("%w: nil provisioner", ErrConfig)
	}
	return NewWithAdapters(cfg, Adapters{Provisioning: legacyProvisioning{prov}}, log, opts...)
}

// NewWithAdapters builds a worker that dispatches each task by its type to
// the matching adapter. opts configure goka: pass
// kafka.Config.GokaOptions().
func NewWithAdapters(cfg Config, ads Adapters, log *slog.Logger, opts ...goka.ProcessorOption) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if ads == (Adapters{}) {
		return nil, fmt.Errorf("%w: no adapters", ErrConfig)
	}
	if log == nil {
		log = slog.Default()
	}
	w := &Worker{cfg: cfg, ads: ads, opts: opts, log: log.With("group", string(cfg.Group))}
	w.graph = goka.DefineGroup(cfg.Group,
		goka.Input(cfg.Tasks, new(codec.Bytes), w.handle),
		goka.Output(cfg.OrderCommands, new(codec.Bytes)),
		goka.Output(cfg.DeadLetter, new(codec.Bytes)),
	)
	if err := w.graph.Validate(); err != nil {
		return nil, fmt.Errorf("fulfillment: group graph: %w", err)
	}
	return w, nil
}

// Run works until ctx ends (nil) or the processor fails (its error). Run may
// be called again after it returned.
func (w *Worker) Run(ctx context.Context) error {
	proc, err := goka.NewProcessor(w.cfg.Brokers, w.graph, w.opts...)
	if err != nil {
		return fmt.Errorf("fulfillment: new processor: %w", err)
	}
	w.log.Info("fulfillment worker running", "input", string(w.cfg.Tasks), "output", string(w.cfg.OrderCommands))
	err = proc.Run(ctx)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("fulfillment: %w", err)
	}
	return nil
}

// Task is the payload of FulfillmentTaskRequested.
type Task struct {
	OrderID  string          `json:"orderId"`
	QuoteID  string          `json:"quoteId"`
	Status   string          `json:"status"`
	TaskID   string          `json:"taskId"`
	TaskType string          `json:"taskType"`
	Attempt  int             `json:"attempt"`
	Lines    json.RawMessage `json:"lines,omitempty"`
	// LineID is the order line of a per-line task (empty for order tasks).
	LineID    string   `json:"lineId,omitempty"`
	DependsOn []string `json:"dependsOn,omitempty"`
	// Compensates is set on a compensation task: the task it undoes.
	Compensates string `json:"compensates,omitempty"`
	// Round is set on a FulfillmentTaskQueryRequested: the query round.
	Round int `json:"round,omitempty"`
}

// CompletePayload is the payload of completeTask.
type CompletePayload struct {
	TaskID string            `json:"taskId"`
	Result map[string]string `json:"result"`
}

// FailPayload is the payload of failTask. Cause classifies the failure for
// the order's fallout case: CauseBusinessRejection, CauseRetriesExhausted
// (the last call certainly had no effect) or CauseUnknownOutcome (the last
// call's outcome is unknown: the effect may exist).
type FailPayload struct {
	TaskID string `json:"taskId"`
	Reason string `json:"reason"`
	Cause  string `json:"cause,omitempty"`
}

// Failure causes (the order grain's vocabulary).
const (
	CauseBusinessRejection = "business_rejection"
	CauseRetriesExhausted  = "retries_exhausted"
	CauseUnknownOutcome    = "unknown_outcome"
)

// AwaitPayload is the payload of awaitTask.
type AwaitPayload struct {
	TaskID   string `json:"taskId"`
	Awaiting string `json:"awaiting"`
}

// IdempotencyKey is the key of the result command of one task attempt.
func IdempotencyKey(taskID string, attempt int) string {
	return "task:" + taskID + ":" + strconv.Itoa(attempt) + ":result"
}

// AwaitKey is the key of the awaitTask command of one task attempt after
// query round round (0: the first call), so that every round's report is
// new to the order while a redelivered one replays.
func AwaitKey(taskID string, attempt, round int) string {
	k := "task:" + taskID + ":" + strconv.Itoa(attempt) + ":await"
	if round > 0 {
		k += ":" + strconv.Itoa(round)
	}
	return k
}

var (
	errStopped   = errors.New("fulfillment: stopped before the task's outcome was known")
	errExhausted = errors.New("fulfillment: " + ReasonRetriesExhausted)
	// errStillUnknown marks an exhaustion whose last call's outcome is
	// unknown.
	errStillUnknown = errors.New("fulfillment: the last call's outcome is unknown")
	errRecords      = errors.New("fulfillment: attempt records")
	// errAwaiting: the system accepted the task; its result comes by
	// callback.
	errAwaiting = errors.New("fulfillment: accepted, the result comes by callback")
)

func (w *Worker) handle(ctx goka.Context, msg any) {
	value, _ := msg.([]byte)
	env, err := kafka.DecodeEnvelope(value)
	if err != nil {
		w.deadLetter(ctx, value, deadletter.CategoryDecode, err)
		return
	}
	if env.EventType != EventTaskRequested && env.EventType != EventTaskQueryRequested {
		return
	}
	query := env.EventType == EventTaskQueryRequested
	var task Task
	if err := json.Unmarshal(env.Payload, &task); err != nil {
		w.deadLetter(ctx, value, deadletter.CategoryDecode, fmt.Errorf("fulfillment: decode task: %w", err))
		return
	}
	if task.TaskID == "" {
		w.deadLetter(ctx, value, deadletter.CategoryPermanent, errors.New("fulfillment: task lacks taskId"))
		return
	}
	orderID := task.OrderID
	if orderID == "" {
		orderID = env.AggregateID
	}
	log := w.log.With("tenant_id", env.TenantID, "order_id", orderID, "task_id", task.TaskID,
		"task_type", task.TaskType, "attempt", task.Attempt, "correlation_id", env.CorrelationID)
	if query {
		log = log.With("query_round", task.Round)
	}

	op, err := w.ads.operation(task.TaskType)
	if err != nil {
		w.deadLetter(ctx, value, deadletter.CategoryPermanent, err)
		return
	}
	req := Request{Tenant: env.TenantID, OrderID: orderID, TaskID: task.TaskID, TaskType: task.TaskType,
		LineID: task.LineID, Attempt: task.Attempt, IdempotencyKey: ExternalKey(env.TenantID, task.TaskID), Lines: task.Lines,
		Compensates: task.Compensates}

	done := ctx.DeferCommit()
	result, err := w.execute(ctx.Context(), op, req, w.cfg.Policy(task.TaskType), query, log)
	if errors.Is(err, errRecords) {
		log.Error("attempt records unavailable: task left for a retry", "error", err)
		done(err)
		return
	}
	var name string
	var payload any
	key := IdempotencyKey(task.TaskID, task.Attempt)
	switch {
	case errors.Is(err, errAwaiting):
		name, payload = CommandAwait, AwaitPayload{TaskID: task.TaskID, Awaiting: AwaitingCallback}
		key = AwaitKey(task.TaskID, task.Attempt, task.Round)
		log.Info("task accepted: its result comes by callback")
	case err == nil:
		name, payload = CommandComplete, CompletePayload{TaskID: task.TaskID, Result: result}
	case errors.Is(err, ErrRejected):
		name, payload = CommandFail, FailPayload{TaskID: task.TaskID, Reason: err.Error(), Cause: CauseBusinessRejection}
	case errors.Is(err, errExhausted):
		log.Warn("task failed: retries exhausted", "error", err)
		cause := CauseRetriesExhausted
		if errors.Is(err, errStillUnknown) {
			cause = CauseUnknownOutcome
		}
		name, payload = CommandFail, FailPayload{TaskID: task.TaskID, Reason: ReasonRetriesExhausted, Cause: cause}
	default:
		log.Info("task not finished before shutdown", "error", err)
		done(fmt.Errorf("%w: %w", errStopped, err))
		return
	}
	pl, _ := json.Marshal(payload) // plain structs of strings: cannot fail
	cmd, _ := json.Marshal(kafka.CommandMessage{
		TenantID:       env.TenantID,
		Kind:           "order",
		ID:             orderID,
		Command:        name,
		Payload:        pl,
		IdempotencyKey: key,
		Actor:          "worker",
		CorrelationID:  env.CorrelationID,
		CausationID:    env.EventID,
	})
	ctx.Emit(w.cfg.OrderCommands, orderID, cmd, goka.WithCtxEmitHeaders(goka.Headers{
		kafka.HeaderTenant:  []byte(env.TenantID),
		kafka.HeaderEventID: []byte(env.EventID),
	}))
	log.Debug("task outcome sent", "command", name)
	done(nil)
}

func (w *Worker) deadLetter(ctx goka.Context, value []byte, cat deadletter.Category, err error) {
	w.log.Warn("message dead-lettered", "topic", string(ctx.Topic()), "partition", ctx.Partition(),
		"offset", ctx.Offset(), "category", string(cat), "error", err)
	deadletter.Emit(ctx, w.cfg.DeadLetter, value, cat, 1, err, w.cfg.Now())
}

// execute performs one task: it calls the system up to p.Attempts times,
// querying it by the idempotency key before any call that follows an unknown
// outcome, and before the first call when the task has recorded attempts or
// query is set (the order asked for a query). It returns the completeTask
// result, errAwaiting when the system accepted the task and will call back
// (or a query finds it pending), an error wrapping ErrRejected, an error
// wrapping errExhausted, one wrapping errRecords when an attempt could not be
// recorded, or ctx's error when ctx ended first.
func (w *Worker) execute(ctx context.Context, op operation, req Request, p TaskPolicy, query bool, log *slog.Logger) (map[string]string, error) {
	rec, err := w.recorder(ctx, op, req)
	if err != nil {
		return nil, err
	}
	unknown := rec.resumed() || query
	if rec.resumed() && !query {
		log.Info("task has recorded attempts: resuming with a query", "attempts", rec.n)
	}
	var last error
	for attempt := 1; attempt <= p.Attempts; attempt++ {
		if attempt > 1 {
			wait := w.cfg.Retry.Wait(attempt - 1)
			log.Warn("task call did not succeed, retrying", "call", attempt-1, "wait", wait,
				"outcome_unknown", unknown, "error", last)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if unknown && op.query != nil {
			var r Receipt
			var found bool
			err := rec.record(ctx, opQuery, func() (string, error) {
				var err error
				r, found, err = callQuery(ctx, op, req.IdempotencyKey, p.Timeout)
				switch {
				case err != nil:
					return "", err
				case found && r.Pending:
					return "pending " + r.Ref, nil
				case found:
					return "found " + r.Ref, nil
				}
				return "absent", nil
			})
			switch {
			case errors.Is(err, errRecords):
				return nil, err
			case err != nil && ctx.Err() != nil:
				return nil, ctx.Err()
			case errors.Is(err, ErrRejected):
				return nil, err // the system had rejected the earlier call
			case err != nil:
				last = fmt.Errorf("query %s: %w", op.system, err)
				continue // still unknown
			case found && r.Pending:
				log.Info("the system holds the task, its result pending: awaiting its callback", "system", op.system)
				return nil, errAwaiting
			case found:
				log.Info("unknown outcome reconciled: the effect exists", "system", op.system)
				return resultOf(op.system, r), nil
			}
			unknown = false // absent: safe to call again with the same key
		}
		var r Receipt
		err := rec.record(ctx, op.name, func() (string, error) {
			cctx, cancel := context.WithTimeout(ctx, p.Timeout)
			defer cancel()
			var err error
			r, err = op.do(cctx, req)
			if err == nil && r.Pending {
				return "accepted, result by callback " + r.Ref, nil
			}
			return r.Ref, err
		})
		switch {
		case errors.Is(err, errRecords):
			return nil, err
		case err == nil && r.Pending:
			return nil, errAwaiting
		case err == nil:
			return resultOf(op.system, r), nil
		case errors.Is(err, ErrRejected):
			return nil, err
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, ErrTechnical):
			unknown = false
		default:
			unknown = true
		}
		last = fmt.Errorf("%s: %w", op.system, err)
	}
	if unknown {
		return nil, fmt.Errorf("%w after %d calls: %w: %w", errExhausted, p.Attempts, errStillUnknown, last)
	}
	return nil, fmt.Errorf("%w after %d calls: %w", errExhausted, p.Attempts, last)
}

func callQuery(ctx context.Context, op operation, key string, timeout time.Duration) (Receipt, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return op.query(ctx, key)
}
