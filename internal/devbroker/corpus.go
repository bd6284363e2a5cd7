package devbroker

// Text the synthetic agents "generate". Plausible enough that a dashboard
// shows something readable; nothing depends on its content.

var responses = map[string][]string{
	"planner": {
		"Plan: first search for survey papers from the last two years, then extract benchmark numbers, then draft a summary with citations.",
		"I will break this into three steps: gather primary sources, compare their claims, and write a short answer with references.",
	},
	"analyst": {
		"The sources agree on the main trend, but two of them measure latency differently, so the numbers are not directly comparable.",
		"Key finding: hybrid retrieval beats dense-only retrieval on long queries by a clear margin, at roughly twice the index size.",
	},
	"writer": {
		"Summary: the evidence points to a consistent improvement, with caveats about evaluation sets and cost. Details and citations follow.",
		"Here is a concise report covering the background, the three strongest results, open questions, and recommended next steps.",
	},
	"draft_reply": {
		"Thanks for reaching out. I have checked your account and found the cause; here is what happened and what we will do next.",
		"Sorry for the trouble. This is a known issue with large exports; the workaround below should get you unblocked today.",
	},
	"reviewer": {
		"The change is sound overall. Two concerns: the queue bound is counted in messages rather than bytes, and an error path leaks a goroutine.",
		"Looks good. Please add a test for the reconnect path and document why the buffer size was chosen.",
	},
	"summarize": {
		"Verdict: approve with minor changes. Three comments, one blocking: release the lock before writing to the socket.",
		"Verdict: request changes. The new cache has no upper bound and the benchmark does not cover the eviction path.",
	},
}

var genericResponses = []string{
	"Done. The intermediate results are stored in the state for the next node.",
	"Step completed; nothing unusual in the inputs.",
}

var routerReasons = []string{
	"The draft covers every point in the request.",
	"Confidence is high enough to continue.",
	"One section is missing supporting evidence.",
	"The request mentions an invoice and a charge amount.",
	"The message describes an error in the product.",
}

var thoughts = []string{
	"Checking whether the previous results already answer the question",
	"Comparing the two most relevant sources",
	"Estimating how many tokens the context needs",
	"Deciding which tool arguments to use",
}

var substeps = []string{"load_context", "build_prompt", "validate_output", "merge_results", "rank_candidates"}

type toolFailure struct {
	code, message, exception, suggestion string
}

var toolFailures = []toolFailure{
	{"TOOL_TIMEOUT", "tool call timed out after 30s", "TimeoutError", "Increase the tool timeout or narrow the query"},
	{"RATE_LIMITED", "upstream API returned 429 Too Many Requests", "RateLimitError", "Retry with exponential backoff"},
	{"INVALID_ARGUMENT", "tool rejected argument 'limit': must be <= 50", "ValidationError", "Clamp the limit before calling the tool"},
}

func responseFor(rng source, node string) string {
	if rs, ok := responses[node]; ok {
		return pick(rng, rs)
	}
	return pick(rng, genericResponses)
}
