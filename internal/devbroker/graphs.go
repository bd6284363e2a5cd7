package devbroker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Node types as the dashboard draws them.
const (
	nodeLLM      = "llm"
	nodeTool     = "tool"
	nodeRouter   = "conditional"
	nodeFunction = "function"
)

// graph is one synthetic agent graph; its exported fields are its
// graph_schema_json.
type graph struct {
	Name       string         `json:"name"`
	Version    string         `json:"version"`
	Nodes      []graphNode    `json:"nodes"`
	Edges      []graphEdge    `json:"edges"`
	EntryPoint string         `json:"entry_point"`
	Metadata   map[string]any `json:"metadata"`

	model   string   // the LLM the graph's llm nodes call
	queries []string // user requests a run starts from
}

type graphNode struct {
	Name     string `json:"name"`
	NodeType string `json:"node_type"`
	Tool     string `json:"tool,omitempty"`
}

type graphEdge struct {
	From     string `json:"from"`
	To       string `json:"to"`
	EdgeType string `json:"edge_type"`
	Label    string `json:"label,omitempty"`
}

func direct(from, to string) graphEdge { return graphEdge{From: from, To: to, EdgeType: "direct"} }

func conditional(from, to, label string) graphEdge {
	return graphEdge{From: from, To: to, EdgeType: "conditional", Label: label}
}

// graphs are the agent graphs the workload runs, chosen per run.
var graphs = []*graph{
	{
		Name: "research_assistant", Version: "1.3.0", EntryPoint: "planner",
		Nodes: []graphNode{
			{Name: "planner", NodeType: nodeLLM},
			{Name: "web_search", NodeType: nodeTool, Tool: "tavily_search"},
			{Name: "analyst", NodeType: nodeLLM},
			{Name: "writer", NodeType: nodeLLM},
			{Name: "critic", NodeType: nodeRouter},
			{Name: "publisher", NodeType: nodeTool, Tool: "notion_create_page"},
		},
		Edges: []graphEdge{
			direct("planner", "web_search"), direct("web_search", "analyst"),
			direct("analyst", "writer"), direct("writer", "critic"),
			conditional("critic", "writer", "revise"), conditional("critic", "publisher", "approve"),
		},
		Metadata: map[string]any{"owner": "research-team", "max_revisions": 2, "framework": "dashflow"},
		model:    "gpt-4o-mini",
		queries: []string{
			"Summarize recent results on retrieval-augmented generation for code search",
			"Compare vector databases for a 50M document corpus",
			"What changed in the EU AI Act between the draft and the final text?",
		},
	},
	{
		Name: "support_triage", Version: "2.0.1", EntryPoint: "classify",
		Nodes: []graphNode{
			{Name: "classify", NodeType: nodeRouter},
			{Name: "billing_lookup", NodeType: nodeTool, Tool: "stripe_list_invoices"},
			{Name: "kb_search", NodeType: nodeTool, Tool: "vector_store_query"},
			{Name: "draft_reply", NodeType: nodeLLM},
			{Name: "quality_check", NodeType: nodeFunction},
		},
		Edges: []graphEdge{
			conditional("classify", "billing_lookup", "billing"), conditional("classify", "kb_search", "technical"),
			direct("billing_lookup", "draft_reply"), direct("kb_search", "draft_reply"),
			direct("draft_reply", "quality_check"),
		},
		Metadata: map[string]any{"owner": "support", "sla_minutes": 30, "framework": "dashflow"},
		model:    "claude-3-5-haiku",
		queries: []string{
			"I was charged twice for my March invoice",
			"The export job fails with a timeout after 10 minutes",
			"How do I rotate the API key for our staging workspace?",
		},
	},
	{
		Name: "code_reviewer", Version: "0.9.4", EntryPoint: "fetch_diff",
		Nodes: []graphNode{
			{Name: "fetch_diff", NodeType: nodeTool, Tool: "github_get_pull_request_diff"},
			{Name: "static_analysis", NodeType: nodeTool, Tool: "golangci_lint"},
			{Name: "reviewer", NodeType: nodeLLM},
			{Name: "summarize", NodeType: nodeLLM},
		},
		Edges: []graphEdge{
			direct("fetch_diff", "static_analysis"), direct("static_analysis", "reviewer"),
			direct("reviewer", "summarize"),
		},
		Metadata: map[string]any{"owner": "platform", "repository": "dashflow/dashflow", "framework": "dashflow"},
		model:    "gpt-4.1",
		queries: []string{
			"Review PR #1423: add backpressure to the websocket writer",
			"Review PR #1431: replace the LRU with a byte-bounded cache",
		},
	},
}

func (g *graph) node(name string) graphNode {
	for _, n := range g.Nodes {
		if n.Name == name {
			return n
		}
	}
	return graphNode{}
}

// outgoing lists the edges leaving node, in declaration order.
func (g *graph) outgoing(node string) []graphEdge {
	var out []graphEdge
	for _, e := range g.Edges {
		if e.From == node {
			out = append(out, e)
		}
	}
	return out
}

// schemaJSON returns graph_schema_json and its schema_id (hex SHA-256 of
// the canonical schema, so equal graphs share an id).
func (g *graph) schemaJSON() (string, string, error) {
	b, err := json.Marshal(g)
	if err != nil {
		return "", "", err
	}
	canon, err := CanonicalJSON(json.RawMessage(b))
	if err != nil {
		return "", "", err
	}
	sum := sha256.Sum256(canon)
	return string(b), hex.EncodeToString(sum[:16]), nil
}
