package relstore

// Compact compacts the string and list tables now, as Commit does when they
// have grown enough: for tests, which churn too little to get there.
func (s *Store) Compact() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.compact()
}

// HeapBytes is the heap the document's slices occupy.
func (s *Store) HeapBytes() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.heapBytes()
}

// ListsBytes is the heap of the ordered sets the lists page through
// (order.go, members.go).
func (s *Store) ListsBytes() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.listsHeapBytes()
}
