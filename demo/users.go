package demo

import (
	"fmt"
	"maps"
	"slices"
)

// addUser registers u, refusing a duplicate ID or username.
func (s *storage) addUser(u User) error {
	u, err := u.normalise()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[u.ID]; ok {
		return fmt.Errorf("demo: duplicate user ID %q", u.ID)
	}
	if _, ok := s.userIDs[u.Username]; ok {
		return fmt.Errorf("demo: duplicate username %q", u.Username)
	}
	s.users[u.ID] = &u
	s.userIDs[u.Username] = u.ID
	s.userOrder = append(s.userOrder, u.ID)
	return nil
}

// addClient registers c, refusing a duplicate ID.
func (s *storage) addClient(c Client) error {
	if err := c.validate(); err != nil {
		return err
	}
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	c.ServiceGroups = slices.Clone(c.ServiceGroups)
	c.Audience = slices.Clone(c.Audience)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[c.ID]; ok {
		return fmt.Errorf("demo: duplicate client ID %q", c.ID)
	}
	s.clients[c.ID] = c
	return nil
}

// dummyPassword is compared against when the username is unknown, so an
// unknown user costs the same as a wrong password.
const dummyPassword = "demo: no such user"

// checkPassword returns the ID of the user with that username and password.
// Unknown user and wrong password look alike, in answer and in timing.
func (s *storage) checkPassword(username, password string) (userID string, ok bool) {
	s.mu.Lock()
	want, id := dummyPassword, ""
	if uid, found := s.userIDs[username]; found {
		want, id = s.users[uid].Password, uid
	}
	s.mu.Unlock()
	if !equalSecrets(want, password) || id == "" {
		return "", false
	}
	return id, true
}

// usernames lists the usernames in the order the users were added.
func (s *storage) usernames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.userOrder))
	for _, id := range s.userOrder {
		names = append(names, s.users[id].Username)
	}
	return names
}

// updateUser applies change to a copy of the user's record and swaps it in,
// so readers holding the old record's slices and maps never see a write.
func (s *storage) updateUser(userID string, change func(*User) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userID]
	if !ok {
		return fmt.Errorf("demo: unknown user %q", userID)
	}
	c := *u
	c.Groups = slices.Clone(u.Groups)
	c.ExtraClaims = maps.Clone(u.ExtraClaims)
	if err := change(&c); err != nil {
		return err
	}
	s.users[userID] = &c
	return nil
}
