package testenv

import "github.com/twmb/franz-go/pkg/kmsg"

// FailedFetch answers every partition of req with the error code (e.g.
// kerr.TopicAuthorizationFailed.Code): what a kfake cluster's fetch
// control returns to make fetches fail while metadata still answers, a
// case a real broker cannot produce without an authorizer.
func FailedFetch(req *kmsg.FetchRequest, code int16) *kmsg.FetchResponse {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.Version = req.Version
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
