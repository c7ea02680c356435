package cache

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Memory is a Backend in the process's memory: an LRU list bounded in entries. Give each
// Cache its own Memory: a Cache tracks its own loads in flight, so a Set or Delete
// through another Cache on the same Memory would not stop them.
type Memory[K comparable, V any] struct {
	mu  sync.Mutex
	max int
	ll  *list.List // front: most recently used
	m   map[K]*list.Element
}

type memItem[K comparable, V any] struct {
	key K
	e   Entry[V]
}

var _ Backend[string, int] = (*Memory[string, int])(nil)

// NewMemory returns an in-memory Backend that holds at most maxEntries entries (at
// least 1), evicting the least recently used.
func NewMemory[K comparable, V any](maxEntries int) *Memory[K, V] {
	return &Memory[K, V]{max: max(maxEntries, 1), ll: list.New(), m: map[K]*list.Element{}}
}

// Get implements Backend.
func (m *Memory[K, V]) Get(_ context.Context, key K) (Entry[V], bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.m[key]
	if !ok {
		return Entry[V]{}, false, nil
	}
	it := el.Value.(*memItem[K, V])
	if !time.Now().Before(it.e.Expires) {
		m.ll.Remove(el)
		delete(m.m, key)
		return Entry[V]{}, false, nil
	}
	m.ll.MoveToFront(el)
	return it.e, true, nil
}

// Set implements Backend.
func (m *Memory[K, V]) Set(_ context.Context, key K, e Entry[V]) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.m[key]; ok {
		el.Value.(*memItem[K, V]).e = e
		m.ll.MoveToFront(el)
		return nil
	}
	m.m[key] = m.ll.PushFront(&memItem[K, V]{key: key, e: e})
	for m.ll.Len() > m.max {
		last := m.ll.Back()
		m.ll.Remove(last)
		delete(m.m, last.Value.(*memItem[K, V]).key)
	}
	return nil
}

// Delete implements Backend.
func (m *Memory[K, V]) Delete(_ context.Context, key K) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.m[key]; ok {
		m.ll.Remove(el)
		delete(m.m, key)
	}
	return nil
}

// Len returns the number of entries, expired ones included.
func (m *Memory[K, V]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ll.Len()
}
